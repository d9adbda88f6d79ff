//! VPC, internet gateway, public subnets (one in single mode, three zones in cluster mode),
//! routes, and the security group: 80/443 from anywhere, 22 only from `ssh_cidr`, and in
//! cluster mode the swarm ports between members of the group only.

use crate::{Tpl, att, r};
use berth_spec::xberth::parse_ipv4_cidr;
use serde_json::{Value, json};
use std::net::Ipv4Addr;

/// Logical IDs of the public subnets, in zone order.
pub(crate) const SUBNETS: [&str; 3] = ["SubnetA", "SubnetB", "SubnetC"];

/// Swarm traffic between members: (protocol, port, what).
const SWARM_PORTS: [(&str, i64, &str); 4] = [
    ("tcp", 2377, "swarm management (managers)"),
    ("tcp", 7946, "swarm gossip"),
    ("udp", 7946, "swarm gossip"),
    ("udp", 4789, "overlay network (VXLAN)"),
];

/// The three subnet CIDRs: the VPC block split in four (the fourth is left free).
pub(crate) fn subnet_cidrs(vpc: &str) -> [String; 3] {
    let (addr, len) = parse_ipv4_cidr(vpc).expect("cidr checked by the spec");
    let sub = len + 2;
    let base = u32::from(addr) & (u32::MAX.checked_shl(32 - len as u32).unwrap_or(0));
    std::array::from_fn(|i| format!("{}/{sub}", Ipv4Addr::from(base + ((i as u32) << (32 - sub as u32)))))
}

pub(crate) fn add(t: &mut Tpl) {
    let aws = t.input.aws;
    t.add(
        "Vpc",
        "AWS::EC2::VPC",
        json!({"CidrBlock": aws.cidr, "EnableDnsHostnames": true, "EnableDnsSupport": true, "Tags": t.tags("vpc")}),
    );
    t.add("InternetGateway", "AWS::EC2::InternetGateway", json!({"Tags": t.tags("igw")}));
    t.add(
        "GatewayAttachment",
        "AWS::EC2::VPCGatewayAttachment",
        json!({"VpcId": r("Vpc"), "InternetGatewayId": r("InternetGateway")}),
    );
    t.add("RouteTable", "AWS::EC2::RouteTable", json!({"VpcId": r("Vpc"), "Tags": t.tags("public")}));
    t.add(
        "DefaultRoute",
        "AWS::EC2::Route",
        json!({"RouteTableId": r("RouteTable"), "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": r("InternetGateway")}),
    )
    .insert("DependsOn".into(), "GatewayAttachment".into());
    let cidrs = subnet_cidrs(&aws.cidr);
    let zones = if t.cluster() { 3 } else { 1 };
    for (i, id) in SUBNETS.iter().enumerate().take(zones) {
        let zone = ["a", "b", "c"][i];
        t.add(
            id,
            "AWS::EC2::Subnet",
            json!({
                "VpcId": r("Vpc"),
                "CidrBlock": cidrs[i],
                "AvailabilityZone": {"Fn::Select": [i, {"Fn::GetAZs": ""}]},
                "MapPublicIpOnLaunch": false,
                "Tags": t.tags(&format!("public-{zone}")),
            }),
        );
        t.add(
            &format!("{id}Routes"),
            "AWS::EC2::SubnetRouteTableAssociation",
            json!({"SubnetId": r(id), "RouteTableId": r("RouteTable")}),
        );
    }
    let mut ingress = vec![
        json!({"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0", "Description": "HTTP to the edge"}),
        json!({"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0", "Description": "HTTPS to the edge"}),
    ];
    if let Some(cidr) = &aws.ssh_cidr {
        let key = if cidr.contains(':') { "CidrIpv6" } else { "CidrIp" };
        let mut rule =
            json!({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Description": "SSH from the operators"});
        rule[key] = Value::String(cidr.clone());
        ingress.push(rule);
    }
    t.add(
        "SecurityGroup",
        "AWS::EC2::SecurityGroup",
        json!({
            "GroupDescription": format!("berth {}: edge ports open, SSH {}", t.name, if aws.ssh_cidr.is_some() { "from ssh_cidr only" } else { "closed" }),
            "VpcId": r("Vpc"),
            "SecurityGroupIngress": ingress,
            "SecurityGroupEgress": [{"IpProtocol": "-1", "CidrIp": "0.0.0.0/0", "Description": "packages, S3, ECR, AWS APIs"}],
            "Tags": t.tags("sg"),
        }),
    );
    if t.cluster() {
        for (proto, port, what) in SWARM_PORTS {
            t.add(
                &format!("SwarmIngress{}{port}", proto.to_ascii_uppercase()),
                "AWS::EC2::SecurityGroupIngress",
                json!({
                    "GroupId": att("SecurityGroup", "GroupId"),
                    "SourceSecurityGroupId": att("SecurityGroup", "GroupId"),
                    "IpProtocol": proto,
                    "FromPort": port,
                    "ToPort": port,
                    "Description": format!("{what} between members"),
                }),
            );
        }
        // Encrypted overlay networks (`driver_opts: encrypted`) carry VXLAN inside IPsec ESP.
        t.add(
            "SwarmIngressEsp",
            "AWS::EC2::SecurityGroupIngress",
            json!({
                "GroupId": att("SecurityGroup", "GroupId"),
                "SourceSecurityGroupId": att("SecurityGroup", "GroupId"),
                "IpProtocol": "50",
                // ESP has no ports: AWS ignores them for such protocols; -1 (all) is what moto needs.
                "FromPort": -1,
                "ToPort": -1,
                "Description": "IPsec ESP of encrypted overlay networks between members",
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_split_the_vpc_in_four() {
        assert_eq!(subnet_cidrs("10.0.0.0/16"), ["10.0.0.0/18", "10.0.64.0/18", "10.0.128.0/18"]);
        assert_eq!(subnet_cidrs("192.168.8.0/24"), ["192.168.8.0/26", "192.168.8.64/26", "192.168.8.128/26"]);
    }
}
