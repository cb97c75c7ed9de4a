//! The deployment files (`deploy/`) against each other and against the real
//! binary: nothing here runs a container or a cluster, but every flag and
//! `WENDA_*` variable the manifests and the Dockerfile pass must be one that
//! `wenda serve --help` / `wenda index --help` lists, and ports, probes,
//! claims and security settings must agree across files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::common;

const GRPC_PORT: i64 = 50051;
const HTTP_PORT: i64 = 8080;
const METRICS_PORT: i64 = 9090;
const READINESS_SERVICE: &str = "wenda.v1.Retrieval";

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn base_dir() -> PathBuf {
    deploy_dir().join("k8s/base")
}

/// Every YAML document in a file.
fn load_all(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: invalid YAML: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The one document in a base manifest.
fn load(name: &str) -> Value {
    let path = base_dir().join(name);
    let mut docs = load_all(&path);
    assert_eq!(docs.len(), 1, "{}: expected one document", path.display());
    docs.remove(0)
}

fn kustomization() -> Value {
    load("kustomization.yaml")
}

fn s<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, got {v:?}"))
}

fn i(v: &Value, what: &str) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("{what}: expected an integer, got {v:?}"))
}

fn seq<'a>(v: &'a Value, what: &str) -> &'a [Value] {
    v.as_sequence()
        .map(|s| s.as_slice())
        .unwrap_or_else(|| panic!("{what}: expected a list, got {v:?}"))
}

/// Manifests of the kustomization by kind (one of each kind but Service).
fn resource(kind: &str) -> Value {
    let mut found: Vec<Value> = resources()
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v["kind"].as_str() == Some(kind))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind} in the kustomization"
    );
    found.remove(0)
}

fn resources() -> Vec<(String, Value)> {
    let k = kustomization();
    seq(&k["resources"], "kustomization resources")
        .iter()
        .flat_map(|r| {
            let name = s(r, "resource").to_string();
            load_all(&base_dir().join(&name))
                .into_iter()
                .map(move |v| (name.clone(), v))
        })
        .collect()
}

fn pod_spec(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]
}

fn containers(pod: &Value) -> Vec<&Value> {
    let mut all: Vec<&Value> = Vec::new();
    for key in ["initContainers", "containers"] {
        if let Some(list) = pod[key].as_sequence() {
            all.extend(list.iter());
        }
    }
    all
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    containers(pod)
        .into_iter()
        .find(|c| c["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// Containers that run the wenda binary itself (args start with a subcommand).
fn wenda_containers(pod: &Value) -> Vec<(&str, &Value)> {
    containers(pod)
        .into_iter()
        .filter(|c| c["command"].is_null())
        .map(|c| {
            let sub = c["args"][0]
                .as_str()
                .unwrap_or_else(|| panic!("container {:?}: no subcommand in args", c["name"]));
            (sub, c)
        })
        .collect()
}

fn args(c: &Value) -> Vec<String> {
    seq(&c["args"], "args")
        .iter()
        .map(|a| s(a, "arg").to_string())
        .collect()
}

/// The value after `--flag` (or in `--flag=value`).
fn flag_value(args: &[String], flag: &str) -> Option<String> {
    let prefix = format!("{flag}=");
    args.iter().enumerate().find_map(|(n, a)| {
        if a == flag {
            args.get(n + 1).cloned()
        } else {
            a.strip_prefix(&prefix).map(str::to_string)
        }
    })
}

/// What `wenda <sub> --help` accepts: long flags and `WENDA_*` variables.
struct Help {
    flags: BTreeSet<String>,
    env: BTreeSet<String>,
}

fn help(sub: &str) -> &'static Help {
    static CACHE: OnceLock<BTreeMap<String, Help>> = OnceLock::new();
    let all = CACHE.get_or_init(|| {
        ["serve", "index"]
            .into_iter()
            .map(|sub| {
                let out = Command::new(env!("CARGO_BIN_EXE_wenda"))
                    .args([sub, "--help"])
                    .output()
                    .expect("run wenda");
                assert!(
                    out.status.success(),
                    "wenda {sub} --help failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let text = String::from_utf8(out.stdout).expect("utf-8 help");
                let mut help = Help {
                    flags: BTreeSet::new(),
                    env: BTreeSet::new(),
                };
                for line in text.lines() {
                    let line = line.trim_start();
                    if line.starts_with('-') {
                        for word in line.split([' ', ',', '<', '[']) {
                            if let Some(flag) = word.strip_prefix("--").filter(|f| !f.is_empty()) {
                                help.flags.insert(format!("--{flag}"));
                            }
                        }
                    }
                    if let Some(rest) = line.split("[env: ").nth(1) {
                        help.env
                            .insert(rest.split('=').next().unwrap_or_default().to_string());
                    }
                }
                assert!(
                    help.flags.contains("--data-dir") && help.env.contains("WENDA_DATA_DIR"),
                    "unexpected help:\n{text}"
                );
                (sub.to_string(), help)
            })
            .collect()
    });
    all.get(sub)
        .unwrap_or_else(|| panic!("no help for subcommand {sub:?}"))
}

fn assert_real_flags(sub: &str, args: &[String], whence: &str) {
    let help = help(sub);
    for a in args.iter().filter(|a| a.starts_with("--")) {
        let flag = a.split('=').next().unwrap_or(a);
        assert!(
            help.flags.contains(flag),
            "{whence}: `wenda {sub}` has no flag {flag} (it has {:?})",
            help.flags
        );
    }
}

fn assert_real_env(sub: &str, name: &str, whence: &str) {
    if name.starts_with("WENDA_") {
        assert!(
            help(sub).env.contains(name),
            "{whence}: `wenda {sub}` reads no variable {name} (it reads {:?})",
            help(sub).env
        );
    }
}

/// `KEY=value` literals of a configMapGenerator entry in the kustomization.
fn generated_config(name: &str) -> BTreeMap<String, String> {
    let k = kustomization();
    let generator = seq(&k["configMapGenerator"], "configMapGenerator")
        .iter()
        .find(|g| g["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no configMapGenerator {name}"));
    seq(&generator["literals"], "literals")
        .iter()
        .map(|l| {
            let (k, v) = s(l, "literal").split_once('=').expect("KEY=value literal");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Port of an `--listen` address.
fn listen_port(args: &[String]) -> i64 {
    listen_port_of(args, "--listen")
}

/// Port of the address after `flag` (`--listen`, `--http-listen`, ...).
fn listen_port_of(args: &[String], flag: &str) -> i64 {
    let listen = flag_value(args, flag).unwrap_or_else(|| panic!("no {flag}"));
    let (host, port) = listen.rsplit_once(':').expect("host:port");
    assert_eq!(
        host, "0.0.0.0",
        "in a container wenda must listen on all interfaces, not {host}"
    );
    port.parse().expect("port number")
}

/// Mount path of a volume in a container, and whether it is read-only.
fn mount<'a>(c: &'a Value, volume: &str) -> Option<(&'a str, bool)> {
    c["volumeMounts"]
        .as_sequence()?
        .iter()
        .find(|m| m["name"].as_str() == Some(volume))
        .map(|m| {
            (
                s(&m["mountPath"], "mountPath"),
                m["readOnly"].as_bool().unwrap_or(false),
            )
        })
}

fn volume<'a>(pod: &'a Value, name: &str) -> &'a Value {
    seq(&pod["volumes"], "volumes")
        .iter()
        .find(|v| v["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no volume {name}"))
}

/// Name of the volume mounted at (or above) `path` in a container.
fn volume_holding<'a>(c: &'a Value, path: &str) -> Option<(&'a str, bool)> {
    c["volumeMounts"]
        .as_sequence()?
        .iter()
        .filter(|m| {
            let mp = m["mountPath"].as_str().unwrap_or_default();
            path == mp || path.starts_with(&format!("{}/", mp.trim_end_matches('/')))
        })
        .max_by_key(|m| m["mountPath"].as_str().unwrap_or_default().len())
        .map(|m| {
            (
                s(&m["name"], "name"),
                m["readOnly"].as_bool().unwrap_or(false),
            )
        })
}

fn labels_match(selector: &Value, labels: &Value, what: &str) {
    let selector = selector
        .as_mapping()
        .unwrap_or_else(|| panic!("{what}: empty selector"));
    assert!(!selector.is_empty(), "{what}: empty selector");
    for (k, v) in selector {
        assert_eq!(
            &labels[k], v,
            "{what}: selector {k:?}={v:?} does not match the pod labels"
        );
    }
}

// ---------------------------------------------------------------------------

#[test]
fn kustomization_lists_every_manifest_and_each_parses() {
    let k = kustomization();
    assert_eq!(k["kind"].as_str(), Some("Kustomization"));
    let listed: BTreeSet<String> = seq(&k["resources"], "resources")
        .iter()
        .map(|r| s(r, "resource").to_string())
        .collect();
    for name in &listed {
        let path = base_dir().join(name);
        assert!(
            path.is_file(),
            "kustomization lists {name}, which does not exist"
        );
        for doc in load_all(&path) {
            for key in ["apiVersion", "kind"] {
                assert!(
                    doc[key].as_str().is_some_and(|v| !v.is_empty()),
                    "{name}: no {key}"
                );
            }
            assert!(
                doc["metadata"]["name"]
                    .as_str()
                    .is_some_and(|v| !v.is_empty()),
                "{name}: no metadata.name"
            );
        }
    }
    // No manifest left out by mistake.
    for entry in std::fs::read_dir(base_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            assert!(
                listed.contains(&name),
                "{name} is in deploy/k8s/base but not in kustomization.yaml"
            );
        }
    }
    for kind in [
        "Deployment",
        "Service",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Job",
    ] {
        assert!(
            resources()
                .iter()
                .any(|(_, v)| v["kind"].as_str() == Some(kind)),
            "no {kind} in the kustomization"
        );
    }
    // Every workload uses the image the kustomization sets.
    let image = s(&k["images"][0]["name"], "images[0].name");
    for kind in ["Deployment", "Job"] {
        for c in containers(pod_spec(&resource(kind))) {
            assert_eq!(
                c["image"].as_str(),
                Some(image),
                "{kind} container {:?}: image",
                c["name"]
            );
        }
    }
}

#[test]
fn deployment_ports_probes_and_services_agree() {
    let deployment = resource("Deployment");
    let pod = pod_spec(&deployment);
    let wenda = container(pod, "wenda");
    let args = args(wenda);
    assert_eq!(args[0], "serve");

    let ports = seq(&wenda["ports"], "ports");
    assert_eq!(ports.len(), 3, "container ports grpc, http and metrics");
    let port_named = |name: &str| -> i64 {
        let p =
            ports_named(wenda, name).unwrap_or_else(|| panic!("no container port named {name}"));
        i(&p["containerPort"], "containerPort")
    };
    let container_port = port_named("grpc");
    assert_eq!(container_port, GRPC_PORT);
    assert_eq!(
        listen_port(&args),
        container_port,
        "--listen port and containerPort differ"
    );
    let http_port = port_named("http");
    assert_eq!(http_port, HTTP_PORT);
    assert_eq!(
        listen_port_of(&args, "--http-listen"),
        http_port,
        "--http-listen port and containerPort differ"
    );
    let metrics_port = port_named("metrics");
    assert_eq!(metrics_port, METRICS_PORT);
    assert_eq!(
        listen_port_of(&args, "--metrics-listen"),
        metrics_port,
        "--metrics-listen port and containerPort differ"
    );

    // Prometheus finds the pods by their annotations.
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(metrics_port.to_string().as_str())
    );
    assert_eq!(annotations["prometheus.io/path"].as_str(), Some("/metrics"));

    // Startup and readiness on gRPC health (readiness on Retrieval: NOT_SERVING
    // while loading and from SIGTERM on), liveness on the HTTP listener.
    for probe in ["startupProbe", "readinessProbe"] {
        let grpc = &wenda[probe]["grpc"];
        assert!(grpc.is_mapping(), "{probe} must be a native gRPC probe");
        assert_eq!(i(&grpc["port"], probe), container_port, "{probe} port");
        assert!(wenda[probe]["httpGet"].is_null() && wenda[probe]["exec"].is_null());
    }
    assert_eq!(
        wenda["readinessProbe"]["grpc"]["service"].as_str(),
        Some(READINESS_SERVICE)
    );
    let live = &wenda["livenessProbe"]["httpGet"];
    assert!(live.is_mapping(), "livenessProbe must be an HTTP probe");
    assert_eq!(live["path"].as_str(), Some("/healthz"));
    let live_port = match &live["port"] {
        Value::Number(n) => n.as_i64().unwrap(),
        Value::String(name) => port_named(name.as_str()),
        other => panic!("livenessProbe port {other:?}"),
    };
    assert_eq!(live_port, http_port, "livenessProbe port");

    // Shutdown: NOT_SERVING, then up to 10 s of draining, after the preStop sleep.
    let grace = i(
        &pod["terminationGracePeriodSeconds"],
        "terminationGracePeriodSeconds",
    );
    let pre_stop: i64 = wenda["lifecycle"]["preStop"]["exec"]["command"]
        .as_sequence()
        .and_then(|c| c.last())
        .and_then(|v| v.as_str())
        .map_or(0, |v| v.parse().expect("preStop sleep seconds"));
    assert!(
        grace > 10 + pre_stop,
        "terminationGracePeriodSeconds {grace} must exceed preStop {pre_stop} s + 10 s drain"
    );

    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    labels_match(
        &deployment["spec"]["selector"]["matchLabels"],
        pod_labels,
        "Deployment selector",
    );
    let services: Vec<Value> = resources()
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v["kind"].as_str() == Some("Service"))
        .collect();
    assert!(
        services
            .iter()
            .any(
                |svc| svc["spec"]["type"].as_str().unwrap_or("ClusterIP") == "ClusterIP"
                    && svc["spec"]["clusterIP"].as_str() != Some("None")
            )
    );
    for svc in &services {
        let what = format!("Service {}", s(&svc["metadata"]["name"], "name"));
        labels_match(&svc["spec"]["selector"], pod_labels, &what);
        let ports = seq(&svc["spec"]["ports"], "ports");
        let grpc = ports
            .iter()
            .find(|p| p["name"].as_str() == Some("grpc"))
            .unwrap_or_else(|| panic!("{what}: no port named grpc"));
        assert_eq!(grpc["appProtocol"].as_str(), Some("grpc"), "{what}");
        assert_eq!(i(&grpc["port"], "port"), GRPC_PORT, "{what}");
        for p in ports {
            let name = s(&p["name"], "port name");
            assert_ne!(
                name, "metrics",
                "{what}: Prometheus scrapes the pods, not the Service"
            );
            let target = match &p["targetPort"] {
                Value::Number(n) => n.as_i64().unwrap(),
                Value::String(name) => port_named(name.as_str()),
                other => panic!("{what}: targetPort {other:?}"),
            };
            assert_eq!(target, i(&p["port"], "port"), "{what}: port {name}");
            assert_eq!(target, port_named(name), "{what}: port {name} targetPort");
        }
    }
    assert!(
        services.iter().any(|svc| {
            seq(&svc["spec"]["ports"], "ports").iter().any(|p| {
                p["name"].as_str() == Some("http") && p["port"].as_i64() == Some(HTTP_PORT)
            })
        }),
        "no Service carries the HTTP API on port {HTTP_PORT}"
    );
}

fn ports_named<'a>(c: &'a Value, name: &str) -> Option<&'a Value> {
    c["ports"]
        .as_sequence()?
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
}

#[test]
fn manifest_flags_and_wenda_env_are_real_flags() {
    let config = generated_config("wenda-config");
    assert!(!config.is_empty());
    let mut checked = 0;
    for kind in ["Deployment", "Job"] {
        let workload = resource(kind);
        let pod = pod_spec(&workload);
        let runs = wenda_containers(pod);
        assert!(!runs.is_empty(), "{kind}: no container runs wenda");
        for (sub, c) in runs {
            let whence = format!("{kind} container {}", s(&c["name"], "name"));
            assert!(
                ["serve", "index"].contains(&sub),
                "{whence}: unexpected subcommand {sub}"
            );
            assert_real_flags(sub, &args(c), &whence);
            for e in c["env"].as_sequence().into_iter().flatten() {
                assert_real_env(sub, s(&e["name"], "env name"), &whence);
                checked += 1;
            }
            let from: Vec<&str> = c["envFrom"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|f| s(&f["configMapRef"]["name"], "envFrom configMapRef"))
                .collect();
            assert_eq!(
                from,
                ["wenda-config"],
                "{whence}: must take the shared settings from wenda-config"
            );
            for key in config.keys() {
                assert!(
                    key.starts_with("WENDA_"),
                    "wenda-config: {key} is not a wenda setting"
                );
                assert_real_env(sub, key, &format!("wenda-config used by {whence}"));
                checked += 1;
            }
        }
    }
    assert!(checked > 10, "too few settings checked: {checked}");
    // The settings that shape the stored index are shared, not set per container.
    for key in [
        "WENDA_MODEL",
        "WENDA_CHUNK_TOKENS",
        "WENDA_CHUNK_OVERLAP",
        "WENDA_CENTER_LANGUAGES",
    ] {
        assert!(config.contains_key(key), "wenda-config must pin {key}");
    }
    assert_eq!(
        config.get("WENDA_MODELS").map(String::as_str),
        Some(dockerfile_models_dir().as_str())
    );
}

/// The Dockerfile's instructions (continuation lines joined).
fn dockerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(deploy_dir().join("Dockerfile")).expect("deploy/Dockerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(cont) = t.strip_suffix('\\') {
            current.push_str(cont);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (instr, rest) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push((instr.to_ascii_uppercase(), rest.trim().to_string()));
        current.clear();
    }
    out
}

/// Instructions of the last (runtime) stage.
fn runtime_stage() -> Vec<(String, String)> {
    let all = dockerfile();
    let last_from = all.iter().rposition(|(i, _)| i == "FROM").expect("FROM");
    all[last_from..].to_vec()
}

fn exec_form(rest: &str) -> Vec<String> {
    serde_json::from_str(rest)
        .unwrap_or_else(|e| panic!("not an exec-form JSON array: {rest}: {e}"))
}

fn dockerfile_cmd() -> Vec<String> {
    let stage = runtime_stage();
    exec_form(
        &stage
            .iter()
            .rev()
            .find(|(i, _)| i == "CMD")
            .expect("CMD in the runtime stage")
            .1,
    )
}

fn dockerfile_models_dir() -> String {
    flag_value(&dockerfile_cmd(), "--models").expect("CMD passes --models")
}

#[test]
fn dockerfile_cmd_uses_real_flags_and_matches_the_image() {
    let stage = runtime_stage();
    let get = |name: &str| {
        stage
            .iter()
            .filter(|(i, _)| i == name)
            .map(|(_, r)| r.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        get("FROM")[0].contains("debian:bookworm-slim") || get("FROM")[0].contains("RUNTIME_IMAGE")
    );
    assert!(
        dockerfile()
            .iter()
            .any(|(i, r)| i == "ARG" && r == "RUNTIME_IMAGE=debian:bookworm-slim")
    );

    assert_eq!(
        exec_form(&get("ENTRYPOINT").last().expect("ENTRYPOINT").clone()),
        ["/usr/local/bin/wenda"]
    );
    let cmd = dockerfile_cmd();
    assert_eq!(cmd[0], "serve");
    assert_real_flags("serve", &cmd, "Dockerfile CMD");
    assert_eq!(
        get("EXPOSE"),
        [listen_port(&cmd).to_string()],
        "EXPOSE and the CMD's --listen port differ"
    );

    // Non-root, and the uid the pods run as.
    let user = get("USER").last().cloned().expect("USER");
    let uid: i64 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("numeric USER (runAsNonRoot needs a number)");
    assert_ne!(uid, 0);
    for kind in ["Deployment", "Job"] {
        assert_eq!(
            i(
                &pod_spec(&resource(kind))["securityContext"]["runAsUser"],
                "runAsUser"
            ),
            uid,
            "{kind} runAsUser"
        );
    }

    // The binary and the model folder end up where ENTRYPOINT and --models point.
    let copies = get("COPY");
    assert!(
        copies
            .iter()
            .any(|c| c.starts_with("--from=") && c.ends_with(" /usr/local/bin/wenda"))
    );
    let models = dockerfile_models_dir();
    assert!(
        copies
            .iter()
            .any(|c| c.starts_with("--from=") && c.ends_with(&format!(" {models}"))),
        "no COPY into {models}"
    );
    // Every run-time model file is staged for that COPY.
    let run = dockerfile()
        .into_iter()
        .filter(|(i, _)| i == "RUN")
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join("\n");
    for needed in [
        "models/multilingual-e5-small.toml",
        "models/lexicon.toml",
        "models/multilingual-e5-small ",
        "models/onnxruntime",
        "models/lexicon ",
    ] {
        assert!(run.contains(needed), "the builder does not stage {needed}");
    }
    assert!(run.contains("make setup") && run.contains("cargo build --release --locked"));
    // The data directory in the CMD is the declared volume and the pods' mount.
    let data_dir = flag_value(&cmd, "--data-dir").expect("--data-dir");
    assert!(
        get("VOLUME")
            .iter()
            .any(|v| v.contains(&format!("\"{data_dir}\""))),
        "VOLUME {data_dir}"
    );
    let deployment = resource("Deployment");
    assert_eq!(
        flag_value(
            &args(container(pod_spec(&deployment), "wenda")),
            "--data-dir"
        ),
        Some(data_dir)
    );
}

#[test]
fn index_job_builds_into_the_pvc_and_servers_only_copy_it() {
    let pvc = resource("PersistentVolumeClaim");
    let claim = s(&pvc["metadata"]["name"], "pvc name");
    let modes: Vec<&str> = seq(&pvc["spec"]["accessModes"], "accessModes")
        .iter()
        .map(|m| s(m, "mode"))
        .collect();
    // Writer and readers mount it at once, from any node.
    assert!(
        modes.contains(&"ReadWriteMany") || modes.contains(&"ReadOnlyMany"),
        "{modes:?}"
    );

    let job = resource("Job");
    let job_pod = pod_spec(&job);
    assert_eq!(job_pod["restartPolicy"].as_str(), Some("Never"));
    let indexers: Vec<(&str, &Value)> = wenda_containers(job_pod);
    assert_eq!(indexers.len(), 1, "the Job runs wenda once");
    let (sub, indexer) = indexers[0];
    assert_eq!(sub, "index");
    let job_args = args(indexer);
    assert!(
        flag_value(&job_args, "--corpus").is_some(),
        "the Job indexes a corpus"
    );

    let pvc_volumes = |pod: &Value| -> Vec<String> {
        seq(&pod["volumes"], "volumes")
            .iter()
            .filter(|v| v["persistentVolumeClaim"].is_mapping())
            .map(|v| {
                assert_eq!(
                    v["persistentVolumeClaim"]["claimName"].as_str(),
                    Some(claim),
                    "claim of volume {:?}",
                    v["name"]
                );
                s(&v["name"], "volume name").to_string()
            })
            .collect()
    };
    let job_pvc = pvc_volumes(job_pod);
    assert_eq!(job_pvc.len(), 1, "the Job mounts the claim {claim}");

    let deployment = resource("Deployment");
    let pod = pod_spec(&deployment);
    let server_pvc = pvc_volumes(pod);
    assert_eq!(
        server_pvc.len(),
        1,
        "the Deployment mounts the claim {claim}"
    );
    assert_eq!(
        volume(pod, &server_pvc[0])["persistentVolumeClaim"]["readOnly"].as_bool(),
        Some(true)
    );

    // redb: one process per data directory, and never on the shared volume.
    // Both wenda processes keep their database on a pod-local emptyDir.
    for (what, pod, c, pvc_name) in [
        ("Job", job_pod, indexer, &job_pvc[0]),
        ("Deployment", pod, container(pod, "wenda"), &server_pvc[0]),
    ] {
        let data_dir = flag_value(&args(c), "--data-dir").expect("--data-dir");
        let (vol, read_only) = volume_holding(c, &data_dir)
            .unwrap_or_else(|| panic!("{what}: --data-dir {data_dir} is not a volume"));
        assert!(!read_only, "{what}: the data dir must be writable");
        assert!(
            volume(pod, vol)["emptyDir"].is_mapping(),
            "{what}: data dir on {vol}, not a pod-local emptyDir"
        );
        assert!(
            mount(c, pvc_name).is_none(),
            "{what}: the wenda process must not mount the shared claim"
        );
    }
    // Servers read the claim only read-only, in the copying init container.
    for c in containers(pod) {
        if let Some((_, read_only)) = mount(c, &server_pvc[0]) {
            assert!(
                read_only,
                "Deployment container {:?} mounts the claim writable",
                c["name"]
            );
        }
    }
    let copier = container(pod, "copy-index");
    let script = s(&copier["command"][2], "copy-index script");
    let (index_path, _) = mount(copier, &server_pvc[0]).expect("copy-index mounts the claim");
    assert!(
        script.contains(&format!("{index_path}/current")),
        "copy-index reads {index_path}/current"
    );
    let publish = container(job_pod, "publish");
    let (publish_path, ro) = mount(publish, &job_pvc[0]).expect("publish mounts the claim");
    assert!(!ro);
    assert!(
        s(&publish["command"][2], "publish script").contains(&format!(
            "mv -T {publish_path}/.current.tmp {publish_path}/current"
        ))
    );
    assert!(
        job["spec"]["parallelism"].as_i64().unwrap_or(1) == 1
            && job["spec"]["completions"].as_i64().unwrap_or(1) == 1
    );
}

#[test]
fn pods_run_as_non_root_with_read_only_root_filesystems() {
    for kind in ["Deployment", "Job"] {
        let workload = resource(kind);
        let pod = pod_spec(&workload);
        let sc = &pod["securityContext"];
        assert_eq!(
            sc["runAsNonRoot"].as_bool(),
            Some(true),
            "{kind}: runAsNonRoot"
        );
        assert!(i(&sc["runAsUser"], "runAsUser") > 0, "{kind}: runAsUser");
        assert_eq!(
            pod["automountServiceAccountToken"].as_bool(),
            Some(false),
            "{kind}"
        );
        for c in containers(pod) {
            let what = format!("{kind} container {:?}", c["name"]);
            let csc = &c["securityContext"];
            assert_eq!(
                csc["readOnlyRootFilesystem"].as_bool(),
                Some(true),
                "{what}: readOnlyRootFilesystem"
            );
            assert_eq!(
                csc["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{what}"
            );
            // A container may not undo the pod's non-root settings.
            assert_ne!(csc["runAsUser"].as_i64(), Some(0), "{what}: runs as root");
            assert_ne!(
                csc["runAsNonRoot"].as_bool(),
                Some(false),
                "{what}: runAsNonRoot false"
            );
            assert_eq!(
                csc["capabilities"]["drop"][0].as_str(),
                Some("ALL"),
                "{what}: capabilities"
            );
            for limit in ["cpu", "memory"] {
                assert!(
                    !c["resources"]["limits"][limit].is_null(),
                    "{what}: no {limit} limit"
                );
                assert!(
                    !c["resources"]["requests"][limit].is_null(),
                    "{what}: no {limit} request"
                );
            }
        }
    }
}

#[test]
fn pdb_and_hpa_target_the_deployment() {
    let deployment = resource("Deployment");
    let name = s(&deployment["metadata"]["name"], "name");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let pdb = resource("PodDisruptionBudget");
    labels_match(
        &pdb["spec"]["selector"]["matchLabels"],
        labels,
        "PodDisruptionBudget",
    );
    let hpa = resource("HorizontalPodAutoscaler");
    assert_eq!(hpa["apiVersion"].as_str(), Some("autoscaling/v2"));
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["kind"].as_str(),
        Some("Deployment")
    );
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"].as_str(), Some(name));
    let min = i(&hpa["spec"]["minReplicas"], "minReplicas");
    assert!(min >= 2 && i(&hpa["spec"]["maxReplicas"], "maxReplicas") >= min);
    // The PDB must leave a replica serving at the HPA's minimum.
    if let Some(max_unavailable) = pdb["spec"]["maxUnavailable"].as_i64() {
        assert!(max_unavailable < min);
    }
    let metrics = seq(&hpa["spec"]["metrics"], "metrics");
    assert!(
        metrics
            .iter()
            .any(|m| m["resource"]["name"].as_str() == Some("cpu"))
    );
    // CPU utilisation needs a CPU request on the server container.
    assert!(!container(pod_spec(&deployment), "wenda")["resources"]["requests"]["cpu"].is_null());
    // The HPA owns the replica count; a fixed one would be reset by every apply.
    assert!(
        deployment["spec"]["replicas"].is_null(),
        "Deployment sets spec.replicas while an HPA scales it"
    );
}

/// Every `WENDA_*` name anywhere under deploy/ (manifests, overlays,
/// patches, the Dockerfile, the README) is a variable the binary reads.
#[test]
fn every_wenda_variable_named_in_deploy_is_real() {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&deploy_dir(), &mut files);
    let known: BTreeSet<&String> = help("serve")
        .env
        .iter()
        .chain(help("index").env.iter())
        .collect();
    let mut seen = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices("WENDA_") {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            if name.len() > "WENDA_".len() && !name.ends_with('_') {
                assert!(
                    known.contains(&name),
                    "{}: {name} is not a variable of wenda serve or index",
                    file.display()
                );
                seen.insert(name);
            }
        }
    }
    for expected in ["WENDA_THREADS", "WENDA_CHUNK_TOKENS", "WENDA_TOKENS_FILE"] {
        assert!(
            seen.contains(expected),
            "deploy/ no longer mentions {expected}: {seen:?}"
        );
    }
}

/// The metrics the source records, as `type:name` (`counter:wenda_requests_total`):
/// every `counter!`, `gauge!` and `histogram!` under src/ whose name is a
/// `wenda_*` string literal.
fn recorded_metrics() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for kind in ["counter", "gauge", "histogram"] {
                let open = format!("{kind}!(");
                for (at, _) in text.match_indices(open.as_str()) {
                    let rest = text[at + open.len()..].trim_start();
                    if let Some(name) = rest.strip_prefix('"').and_then(|r| r.split('"').next())
                        && name.starts_with("wenda_")
                    {
                        found.insert(format!("{kind}:{name}"));
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    found
}

/// `deploy/validate.py` (tests/requirements.txt installs kubernetes-validate):
/// the base and every overlay, rendered, against the Kubernetes API schemas
/// of the oldest supported version and of the newest the package knows, in
/// strict mode; ports, probes, Services and TLS across each rendered overlay;
/// wenda-config against this binary's defaults; and every metric the
/// Grafana dashboard queries against the metrics the source records.
#[test]
fn manifests_and_dashboard_validate() {
    let metrics = recorded_metrics();
    for expected in [
        "counter:wenda_requests_total",
        "histogram:wenda_request_duration_seconds",
        "gauge:wenda_passages",
    ] {
        assert!(
            metrics.contains(expected),
            "src/ records no {expected}: {metrics:?}"
        );
    }
    let metrics: Vec<&str> = metrics.iter().map(String::as_str).collect();
    let out = Command::new(common::python())
        .arg(deploy_dir().join("validate.py"))
        .arg("--wenda")
        .arg(env!("CARGO_BIN_EXE_wenda"))
        .arg("--metrics")
        .arg(metrics.join(","))
        .output()
        .expect("run deploy/validate.py with the venv's python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "deploy/validate.py failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every kustomization was rendered and checked.
    for kustomization in [
        "k8s/base",
        "k8s/overlays/read-only-api",
        "k8s/overlays/tls",
        "k8s/overlays/postgres",
    ] {
        assert!(
            stdout.contains(&format!("ok   {kustomization}: Deployment/wenda valid")),
            "{kustomization} not validated:\n{stdout}"
        );
    }
}

/// Renders the kustomization with `kubectl kustomize` where kubectl is
/// installed (it is not part of the project's tool set, so elsewhere this
/// only says it was skipped).
#[test]
fn kustomize_renders_the_base() {
    let out = match Command::new("kubectl")
        .args(["kustomize"])
        .arg(base_dir())
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("kubectl not available ({e}); skipping the kustomize render");
            return;
        }
    };
    assert!(
        out.status.success(),
        "kubectl kustomize failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&rendered)
        .map(|d| Value::deserialize(d).unwrap())
        .collect();
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "ConfigMap",
        "Deployment",
        "Service",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Job",
    ] {
        assert!(
            kinds.contains(kind),
            "rendered output has no {kind}: {kinds:?}"
        );
    }
    let image = format!(
        "{}:{}",
        s(&kustomization()["images"][0]["newName"], "newName"),
        s(&kustomization()["images"][0]["newTag"], "newTag")
    );
    assert!(
        rendered.contains(&format!("image: {image}")),
        "images transformer did not set {image}"
    );

    // The read-only-api overlay adds the tokens file to the server container.
    let overlay = deploy_dir().join("k8s/overlays/read-only-api");
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&overlay)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize overlay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> =
        serde_yaml_ng::Deserializer::from_str(&String::from_utf8(out.stdout).unwrap())
            .map(|d| Value::deserialize(d).unwrap())
            .collect();
    let deployment = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Deployment"))
        .expect("Deployment");
    let wenda = container(pod_spec(deployment), "wenda");
    let tokens = seq(&wenda["env"], "env")
        .iter()
        .find(|e| e["name"].as_str() == Some("WENDA_TOKENS_FILE"))
        .and_then(|e| e["value"].as_str())
        .expect("WENDA_TOKENS_FILE in the overlay's server container");
    let (vol, read_only) = volume_holding(wenda, tokens).expect("tokens file on a mounted volume");
    assert!(read_only);
    assert!(volume(pod_spec(deployment), vol)["secret"]["secretName"].is_string());
}

/// The PostgreSQL overlay, rendered by deploy/validate.py: replicas that
/// all accept writes on one database, so no index Job and no shared
/// volume; the URL from a Secret; a data directory of each pod's own.
#[test]
fn the_postgres_overlay_runs_writable_replicas_on_a_secret_url() {
    let out = Command::new(common::python())
        .arg(deploy_dir().join("validate.py"))
        .arg("--print")
        .arg(deploy_dir().join("k8s/overlays/postgres"))
        .output()
        .expect("run deploy/validate.py --print");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> =
        serde_yaml_ng::Deserializer::from_str(&String::from_utf8(out.stdout).unwrap())
            .map(|d| Value::deserialize(d).unwrap())
            .collect();
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert!(
        !kinds.contains("Job") && !kinds.contains("PersistentVolumeClaim"),
        "{kinds:?}"
    );
    let deployment = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Deployment"))
        .expect("Deployment");
    let pod = pod_spec(deployment);
    assert!(pod["initContainers"].is_null(), "no index to copy in");
    let wenda = container(pod, "wenda");
    let store = seq(&wenda["env"], "env")
        .iter()
        .find(|e| e["name"].as_str() == Some("WENDA_STORE"))
        .expect("WENDA_STORE in the server container");
    assert!(
        store["valueFrom"]["secretKeyRef"]["name"].is_string(),
        "the URL (with its password) comes from a Secret: {store:?}"
    );
    let args = args(wenda);
    let data_dir = args
        .iter()
        .position(|a| a == "--data-dir")
        .map(|i| args[i + 1].clone())
        .expect("--data-dir");
    let (vol, read_only) = volume_holding(wenda, &data_dir).expect("data dir on a volume");
    assert!(!read_only);
    assert!(
        volume(pod, vol)["emptyDir"].is_mapping(),
        "each replica's manifest and graph dump are its own"
    );
    let hpa = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("HorizontalPodAutoscaler"))
        .expect("HorizontalPodAutoscaler");
    assert!(hpa["spec"]["minReplicas"].as_u64().unwrap_or(1) >= 2);
}
