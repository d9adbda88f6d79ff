use super::*;
use crate::convert::{ConvertOptions, desired};
use crate::plan::{PlanOptions, plan};
use crate::{Observed, render_text};
use serde_json::json;

fn stack(v: serde_json::Value) -> Stack {
    serde_json::from_value(v).expect("test stack deserialises")
}

fn no_files(_: &std::path::Path) -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no files in these tests"))
}

const IMAGE: &str = "berth/edge:0123456789ab";

fn blog() -> Stack {
    stack(json!({
        "version": "3.8",
        "services": {
            "backend": {"image": "blog/backend:1", "x-berth": {
                "routes": ["/api", {"path": "/admin", "max_body": 1024, "timeout": "5s"}],
                "port": 8000, "health": "/api/health"}},
            "frontend": {"image": "blog/frontend:1", "x-berth": {"routes": ["/"], "port": 80}},
            "worker": {"image": "blog/backend:1", "deploy": {"update_config": {"order": "stop-first"}}}
        },
        "volumes": {"assets": {}},
        "x-berth": {
            "domain": "blog.example.com",
            "acme": {"email": "ops@example.com"},
            "static": [{"path": "/static", "volume": "assets", "subdir": "static"}],
            "edge": {"http_port": 8080, "https_port": 8443}
        }
    }))
}

fn with_edge(s: &Stack, handover: bool) -> Desired {
    let mut d = desired(s, "blog", &ConvertOptions::default(), &no_files).expect("converts");
    add_edge(&mut d, s, &EdgeOptions { image: IMAGE.into(), handover }).expect("edge");
    d
}

#[test]
fn edge_config_of_a_blog_stack() {
    insta::assert_json_snapshot!(edge_config(&blog(), "blog").unwrap());
}

#[test]
fn no_routes_no_edge() {
    let s = stack(json!({"services": {"web": {"image": "nginx"}}}));
    assert_eq!(edge_config(&s, "st"), None);
    assert!(urls(&s).is_empty());
    let mut d = desired(&s, "st", &ConvertOptions::default(), &no_files).unwrap();
    let before = d.clone();
    assert!(!add_edge(&mut d, &s, &EdgeOptions { image: IMAGE.into(), handover: true }).unwrap());
    assert_eq!(d, before);
}

#[test]
fn tls_mode_follows_domains_and_acme() {
    let cfg = |xb: serde_json::Value| {
        let s = stack(
            json!({"services": {"web": {"image": "a", "x-berth": {"routes": ["/"], "port": 80}}}, "x-berth": xb}),
        );
        (edge_config(&s, "st").unwrap(), urls(&s))
    };
    let (c, u) = cfg(json!({}));
    assert_eq!(c["tls"], json!({"mode": "off"}));
    assert_eq!(c["domains"], json!(["localhost"]));
    assert_eq!(c["https_port"], json!(null));
    assert_eq!(u, ["http://localhost/"]);
    let (c, u) = cfg(json!({"domains": ["app.localhost", "*.app.localhost"], "edge": {"https_port": 8443}}));
    assert_eq!(c["tls"]["mode"], "local-ca");
    assert_eq!(u, ["https://app.localhost:8443/", "https://app.localhost:8443/"]);
    let (c, _) = cfg(json!({"domain": "example.com", "acme": {"email": "a@example.com", "directory": "local"}}));
    assert_eq!(c["tls"]["mode"], "local-ca");
    let (c, _) = cfg(
        json!({"domain": "example.com", "acme": {"email": "a@example.com", "directory": "https://127.0.0.1:14000/dir"}}),
    );
    assert_eq!(c["tls"]["mode"], "acme");
    assert_eq!(c["tls"]["directory"], "https://127.0.0.1:14000/dir");
    let (c, u) = cfg(json!({"domain": "example.com"}));
    assert_eq!(c["tls"]["mode"], "off");
    assert_eq!(u, ["http://example.com/"]);
}

#[test]
fn edge_services_with_handover() {
    let d = with_edge(&blog(), true);
    let edge: BTreeMap<&String, &ServiceSpec> = d.services.iter().filter(|(n, _)| n.starts_with("blog_edge")).collect();
    assert_eq!(edge.len(), 2);
    insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!(edge) });
}

#[test]
fn edge_service_without_handover_publishes_host_ports() {
    let d = with_edge(&blog(), false);
    assert!(!d.services.contains_key("blog_edge-listen"));
    let ep = d.services["blog_edge"].endpoint_spec.clone().unwrap();
    let ports: Vec<(i64, String)> =
        ep.ports.unwrap().iter().map(|p| (p.published_port.unwrap(), p.publish_mode.unwrap().to_string())).collect();
    assert_eq!(ports, [(8080, "host".to_string()), (8443, "host".to_string())]);
    let order = d.services["blog_edge"].update_config.clone().unwrap().order.unwrap();
    assert_eq!(order, ServiceSpecUpdateConfigOrderEnum::STOP_FIRST);
}

#[test]
fn routed_services_update_start_first_unless_the_file_says_otherwise() {
    let d = with_edge(&blog(), true);
    let order = |svc: &str| d.services[svc].update_config.as_ref().and_then(|u| u.order);
    assert_eq!(order("blog_backend"), Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST));
    assert_eq!(order("blog_frontend"), Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST));
    assert_eq!(order("blog_worker"), Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST));
    let grace =
        |svc: &str| d.services[svc].task_template.as_ref().unwrap().container_spec.as_ref().unwrap().stop_grace_period;
    assert_eq!(grace("blog_backend"), Some(DRAIN_GRACE_NS));
    assert_eq!(grace("blog_worker"), None);
}

#[test]
fn edge_config_is_content_addressed_so_a_change_is_a_new_config() {
    let a = with_edge(&blog(), true);
    let mut s = blog();
    s.extras.get_mut("x-berth").unwrap()["edge"]["hsts"] = json!(false);
    let b = with_edge(&s, true);
    let names = |d: &Desired| d.configs.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&a).len(), 1);
    assert_ne!(names(&a), names(&b));
    assert_eq!(with_edge(&blog(), true), a, "same stack, same desired state");
}

#[test]
fn a_service_named_edge_is_refused() {
    let s = stack(json!({"services": {"edge": {"image": "a", "x-berth": {"routes": ["/"], "port": 80}}}}));
    let mut d = desired(&s, "st", &ConvertOptions::default(), &no_files).unwrap();
    let err = add_edge(&mut d, &s, &EdgeOptions { image: IMAGE.into(), handover: false }).unwrap_err();
    assert_eq!(err[0].path, "services.edge");
}

#[test]
fn plan_of_a_new_stack_with_an_edge() {
    let d = with_edge(&blog(), true);
    let p = plan(&d, &Observed::default(), &PlanOptions::default());
    insta::assert_snapshot!(render_text(&p));
}

#[test]
fn volumes_mounted_by_desired_services_give_no_still_used_note() {
    // Regression: every deploy of a stack with an edge noted "volume blog_edge-run is no longer in the
    // file but is still used by blog_edge, blog_edge-listen" (volumes are never in `desired.volumes`).
    let d = with_edge(&blog(), true);
    let labels = json!({"com.docker.stack.namespace": "blog", "io.berth.stack": "blog"});
    let volume = |name: &str| json!({"Name": name, "Driver": "local", "Mountpoint": "/x", "Labels": labels, "Scope": "local", "Options": {}});
    let observed: Observed = serde_json::from_value(json!({"volumes": {
        "blog_edge-run": volume("blog_edge-run"),
        "blog_assets": volume("blog_assets"),
        "blog_old": volume("blog_old"),
    }}))
    .unwrap();
    let p = plan(&d, &observed, &PlanOptions::default());
    let notes: Vec<&String> = p.notes.iter().filter(|n| n.contains("volume")).collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("blog_old is no longer used"), "{notes:?}");
}
