//! The namespaces-mode plan for the postcard sample.

use super::*;
use crate::config;

fn sample_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/postcard")
}

fn postcard() -> (LocalFile, Vec<Object>) {
    let dir = sample_dir();
    let local =
        LocalFile::parse(&std::fs::read_to_string(dir.join("local.yaml")).unwrap()).unwrap();
    let files = config::yaml_files(&[dir.join("mesh")], false).unwrap();
    let loaded = config::load_and_validate(&files);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    (
        local,
        loaded.objects.into_iter().map(|l| l.object).collect(),
    )
}

fn plan() -> PodPlan {
    let (local, objects) = postcard();
    build(&local, &objects, Path::new("/s"), Path::new("/bin")).unwrap()
}

#[test]
fn one_pod_per_workload_with_the_entrys_identity() {
    let plan = plan();
    let names: Vec<_> = plan.workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["greeter-v1", "messenger-v1", "messenger-v2"]);
    let v2 = &plan.workloads[2];
    assert_eq!(v2.service, "messenger");
    assert_eq!(v2.namespace, "default");
    assert_eq!(v2.service_account, "postcard-messenger");
    assert_eq!(v2.labels.get("version").map(String::as_str), Some("v2"));
    assert_eq!(v2.labels.get("app").map(String::as_str), Some("messenger"));
    assert_eq!(v2.command, ["/bin/messenger"]);
    assert_eq!(v2.ports[0].number, 9080);
}

#[test]
fn apps_get_no_proxy_settings_only_their_listen_address() {
    let plan = plan();
    let greeter = &plan.workloads[0];
    assert_eq!(greeter.env["LISTEN"], "0.0.0.0:9080");
    assert_eq!(
        greeter.env["MESSENGER_URL"],
        "http://messenger:9080/message"
    );
    assert!(greeter
        .env
        .keys()
        .all(|k| !k.to_lowercase().contains("proxy")));
}

#[test]
fn service_entries_map_to_their_short_host_names() {
    let plan = plan();
    let key = ("default".to_string(), "messenger".to_string());
    assert_eq!(
        plan.services.get(&key).map(String::as_str),
        Some("messenger")
    );
    assert_eq!(plan.services.len(), 2);
}

#[test]
fn rewrite_sets_pod_addresses_and_vips_and_keeps_other_documents() {
    let dir = sample_dir().join("mesh");
    let key = |n: &str| ("default".to_string(), n.to_string());
    let pods = BTreeMap::from([(key("messenger-v2"), Ipv4Addr::new(198, 18, 7, 13))]);
    let vips = BTreeMap::from([(key("messenger"), Ipv4Addr::new(198, 19, 7, 12))]);

    let text = std::fs::read_to_string(dir.join("workloads.yaml")).unwrap();
    let out = rewrite(&text, &pods, &vips).unwrap();
    let docs = docs::split(&out);
    let address = |i: usize| docs[i].value.as_ref().unwrap()["spec"]["address"].clone();
    assert_eq!(address(0), "127.0.10.1");
    assert_eq!(address(2), "198.18.7.13");

    let text = std::fs::read_to_string(dir.join("services.yaml")).unwrap();
    let out = rewrite(&text, &pods, &vips).unwrap();
    let docs = docs::split(&out);
    let messenger = docs[1].value.as_ref().unwrap();
    assert_eq!(messenger["spec"]["addresses"][0], "198.19.7.12");
    assert_eq!(messenger["spec"]["ports"][0]["number"], 9080);
    assert!(docs[0].value.as_ref().unwrap()["spec"]
        .get("addresses")
        .is_none());

    let text = std::fs::read_to_string(dir.join("gateway.yaml")).unwrap();
    assert_eq!(
        rewrite(&text, &pods, &vips).unwrap(),
        docs::join(&docs::split(&text))
    );
}
