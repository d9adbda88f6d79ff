//! Auto-scaling groups as the agent sees them: the stack's groups with their instances and
//! lifecycle states, and completing a termination lifecycle action.

use crate::AwsError;
use aws_sdk_autoscaling::types::Filter;
use serde::Serialize;

/// The lifecycle transition of termination hooks.
pub const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";

/// One auto-scaling group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Group {
    pub name: String,
    pub desired: i32,
    pub instances: Vec<GroupInstance>,
    /// Names of its lifecycle hooks on termination.
    pub termination_hooks: Vec<String>,
}

/// An instance of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupInstance {
    pub instance_id: String,
    pub zone: String,
    /// `Pending`, `InService`, `Terminating:Wait`, `Standby`, ...
    pub lifecycle_state: String,
    /// `Healthy` or `Unhealthy`.
    pub health: String,
}

impl GroupInstance {
    /// The instance is (or is about to be) part of the group: pending, in service or on standby.
    pub fn alive(&self) -> bool {
        let s = self.lifecycle_state.as_str();
        s.starts_with("Pending") || s == "InService" || s.contains("Standby") || s.starts_with("Warmed")
    }
    /// The group is terminating it (a lifecycle hook may hold it in `Terminating:Wait`).
    pub fn terminating(&self) -> bool {
        self.lifecycle_state.starts_with("Terminat")
    }
}

/// Auto-scaling calls of the agent.
#[derive(Debug, Clone)]
pub struct Asg {
    client: aws_sdk_autoscaling::Client,
}

impl Asg {
    pub fn new(conf: &aws_types::SdkConfig) -> Asg {
        Asg { client: aws_sdk_autoscaling::Client::new(conf) }
    }

    /// The groups CloudFormation made for stack `cfn_stack` (tag `aws:cloudformation:stack-name`),
    /// plus `extra` groups named explicitly; each with its instances and termination hooks.
    pub async fn groups(&self, cfn_stack: Option<&str>, extra: &[String]) -> Result<Vec<Group>, AwsError> {
        let mut out: Vec<Group> = Vec::new();
        let mut queries: Vec<(Option<Filter>, Vec<String>)> = Vec::new();
        if let Some(stack) = cfn_stack {
            let f = Filter::builder().name("tag:aws:cloudformation:stack-name").values(stack).build();
            queries.push((Some(f), Vec::new()));
        }
        if !extra.is_empty() {
            queries.push((None, extra.to_vec()));
        }
        for (filter, names) in queries {
            let mut token: Option<String> = None;
            loop {
                let out_page = self
                    .client
                    .describe_auto_scaling_groups()
                    .set_filters(filter.clone().map(|f| vec![f]))
                    .set_auto_scaling_group_names((!names.is_empty()).then(|| names.clone()))
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| AwsError::api("autoscaling:DescribeAutoScalingGroups", e))?;
                for g in out_page.auto_scaling_groups() {
                    let name = g.auto_scaling_group_name().unwrap_or_default().to_string();
                    if out.iter().any(|o| o.name == name) {
                        continue;
                    }
                    let mut instances: Vec<GroupInstance> = g
                        .instances()
                        .iter()
                        .map(|i| GroupInstance {
                            instance_id: i.instance_id().unwrap_or_default().to_string(),
                            zone: i.availability_zone().unwrap_or_default().to_string(),
                            lifecycle_state: i.lifecycle_state().map(|s| s.as_str().to_string()).unwrap_or_default(),
                            health: i.health_status().unwrap_or_default().to_string(),
                        })
                        .collect();
                    instances.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
                    out.push(Group {
                        name,
                        desired: g.desired_capacity().unwrap_or_default(),
                        instances,
                        termination_hooks: Vec::new(),
                    });
                }
                match out_page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Names of the group's termination lifecycle hooks.
    pub async fn termination_hooks(&self, group: &str) -> Result<Vec<String>, AwsError> {
        let out = self
            .client
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(group)
            .send()
            .await
            .map_err(|e| AwsError::api("autoscaling:DescribeLifecycleHooks", e))?;
        let mut hooks: Vec<String> = out
            .lifecycle_hooks()
            .iter()
            .filter(|h| h.lifecycle_transition() == Some(TERMINATING))
            .filter_map(|h| h.lifecycle_hook_name().map(str::to_string))
            .collect();
        hooks.sort();
        Ok(hooks)
    }

    /// Lets the group go on terminating the instance (`CONTINUE`). An action that is no longer
    /// pending (completed before, or timed out) counts as done.
    pub async fn complete_termination(&self, group: &str, hook: &str, instance_id: &str) -> Result<(), AwsError> {
        let res = self
            .client
            .complete_lifecycle_action()
            .auto_scaling_group_name(group)
            .lifecycle_hook_name(hook)
            .instance_id(instance_id)
            .lifecycle_action_result("CONTINUE")
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = AwsError::api("autoscaling:CompleteLifecycleAction", e);
                if err.to_string().contains("No active Lifecycle Action") { Ok(()) } else { Err(err) }
            }
        }
    }
}
