//! Interpolation and env files against docker/cli's and compose-go's test vectors (read from ../shared), plus
//! berth's own cases for positions, paths, casts and env_file edge cases.

use berth_spec::env::{Env, parse_dotenv, parse_env_file, parse_env_file_bytes};
use berth_spec::interpolate::{
    Cast, TemplateError, extract_variables, interpolate, interpolate_node, substitute, substitute_strict,
};
use berth_spec::yaml::{self, Node, Pos, Value};
use serde_json::Value as J;
use std::collections::{BTreeMap, HashMap};

const SUITES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/compose-suites");

fn read(rel: &str) -> String {
    let p = format!("{SUITES}/{rel}");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {p}: {e}"))
}

fn read_json(rel: &str) -> J {
    serde_json::from_str(&read(rel)).unwrap()
}

fn mapping(j: &J) -> HashMap<String, String> {
    j.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect()
}

fn lookup_in(m: &HashMap<String, String>) -> impl Fn(&str) -> Option<String> + '_ {
    move |k: &str| m.get(k).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

// ---------------------------------------------------------------------------------------------------------------
// docker/cli template_test.go

#[test]
fn docker_cli_template_substitute_cases() {
    let cases = read_json("docker-cli/derived/template-cases.json");
    let m = mapping(&cases["mapping"]);
    let l = lookup_in(&m);
    let list = cases["substitute"].as_array().unwrap();
    assert_eq!(list.len(), 27);
    for c in list {
        let t = c["template"].as_str().unwrap();
        let got = substitute(t, &l);
        if let Some(exp) = c["expected"].as_str() {
            assert_eq!(got.as_ref().ok().map(String::as_str), Some(exp), "template {t:?}: {got:?}");
        } else {
            let want = c["expected_error_contains"].as_str().unwrap();
            let e = got.expect_err(t);
            assert!(e.to_string().contains(want), "template {t:?}: error {e} lacks {want:?}");
        }
    }
}

#[test]
fn docker_cli_template_missing_is_error_cases() {
    let cases = read_json("docker-cli/derived/template-cases.json");
    let m = mapping(&cases["mapping"]);
    let l = lookup_in(&m);
    let list = cases["substitute_missing_is_error"]["cases"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for c in list {
        let t = c["template"].as_str().unwrap();
        let got = substitute_strict(t, &l);
        if let Some(exp) = c["expected"].as_str() {
            assert_eq!(got.unwrap(), exp, "template {t:?}");
        } else {
            let want = c["expected_error_contains"].as_str().unwrap();
            let e = got.expect_err(t);
            assert!(e.to_string().contains(want), "template {t:?}: error {e} lacks {want:?}");
        }
    }
}

/// docker/cli's recurseExtract: strings, mapping values recursively, and direct string items of lists.
fn extract_from(j: &J, out: &mut BTreeMap<String, String>) {
    let mut take = |s: &str| {
        for (n, d) in extract_variables(s) {
            out.insert(n, d.unwrap_or_default());
        }
    };
    match j {
        J::String(s) => take(s),
        J::Object(o) => o.values().for_each(|v| extract_from(v, out)),
        J::Array(a) => a.iter().filter_map(J::as_str).for_each(take),
        _ => {}
    }
}

#[test]
fn docker_cli_extract_variables_cases() {
    let cases = read_json("docker-cli/derived/template-cases.json");
    let list = cases["extract_variables"]["cases"].as_array().unwrap();
    assert_eq!(list.len(), 9);
    for c in list {
        let mut got = BTreeMap::new();
        extract_from(&c["dict"], &mut got);
        let want: BTreeMap<String, String> = mapping(&c["expected"]).into_iter().collect();
        assert_eq!(got, want, "case {}", c["name"]);
    }
}

#[test]
fn extract_variables_keeps_order_and_defaults() {
    assert_eq!(
        extract_variables("$$x ${A:-1}$B ${C?no} ${D-}"),
        vec![
            ("A".to_string(), Some("1".to_string())),
            ("B".to_string(), None),
            ("C".to_string(), None),
            ("D".to_string(), Some(String::new())),
        ]
    );
}

// ---------------------------------------------------------------------------------------------------------------
// docker/cli interpolation_test.go

#[test]
fn docker_cli_interpolation_cases() {
    let cases = read_json("docker-cli/derived/interpolation-cases.json");
    let base = mapping(&cases["mapping"]);
    let list = cases["cases"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    for c in list {
        let name = c["test"].as_str().unwrap();
        let m = if c["lookup"] == "os_env" { mapping(&c["os_env"]) } else { base.clone() };
        let casts: Vec<(&str, Cast)> = c["cast"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        assert_eq!(v, "int");
                        (k.as_str(), Cast::Int)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let pos = Pos { file: 0, line: 1, col: 1 };
        let mut doc = Node::from_json(&c["input"], pos);
        let mut diags = Vec::new();
        for (k, v) in doc.as_map_mut().unwrap().iter_mut() {
            diags.extend(interpolate_node(v, k, k, &lookup_in(&m), &casts));
        }
        if let Some(exp) = c.get("expected") {
            assert!(diags.iter().all(|d| !d.is_error()), "{name}: {diags:?}");
            assert_eq!(&doc.to_json(), exp, "{name}");
        } else {
            // docker/cli: invalid interpolation format for servicea.image: "${"; you may need to escape any $ ...
            let errs: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
            assert_eq!(errs.len(), 1, "{name}: {diags:?}");
            assert_eq!(errs[0].code, "interpolate.invalid");
            assert_eq!(errs[0].path, "servicea.image");
            assert!(errs[0].message.contains("invalid interpolation format"), "{}", errs[0].message);
            assert!(errs[0].message.contains("\"${\""), "{}", errs[0].message);
            assert!(errs[0].hint.as_deref().unwrap().contains("$$"));
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Template behaviour checked against `docker stack config` 28.2.2

fn sub(t: &str, pairs: &[(&str, &str)]) -> Result<String, TemplateError> {
    let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    substitute(t, &lookup_in(&m))
}

#[test]
fn double_dollar_is_a_literal_dollar() {
    assert_eq!(sub("${A:-x}$$", &[]).unwrap(), "x$");
    assert_eq!(sub("$$A$$", &[("A", "v")]).unwrap(), "$A$");
    assert_eq!(sub("$$$A", &[("A", "v")]).unwrap(), "$v");
    assert_eq!(sub("$$}", &[]).unwrap(), "$}");
}

#[test]
fn unbraced_names_take_modifiers_and_defaults_do_not_nest() {
    // Verified with `docker stack config` (A=x / A unset).
    assert_eq!(sub("$A-bar baz", &[("A", "x")]).unwrap(), "x");
    assert_eq!(sub("$A-bar baz", &[]).unwrap(), "bar baz");
    assert_eq!(sub("$A:-q}z", &[]).unwrap(), "q}z");
    assert_eq!(sub("${A:-${B}}", &[("A", "x")]).unwrap(), "x}");
    assert_eq!(sub("${A:-${B}}", &[]).unwrap(), "${B}");
    assert_eq!(sub("${B:?must-set}", &[]).unwrap(), "set");
    assert_eq!(sub("$} ${A}", &[("A", "x")]).unwrap(), "} x");
}

#[test]
fn invalid_templates_are_errors() {
    for t in ["$", "a $ b", "${", "$}", "${}", "${ A}", "${A }", "${A!}", "${1A}", "$1", "${A:x}", "x$-"] {
        assert!(matches!(sub(t, &[]), Err(TemplateError::Invalid { .. })), "{t:?}");
    }
    assert_eq!(sub("${", &[]).unwrap_err(), TemplateError::Invalid { template: "${".into() },);
}

#[test]
fn set_but_empty_variables_follow_the_colon_rules() {
    let e = [("E", "")];
    assert_eq!(sub("${E-d}", &e).unwrap(), "");
    assert_eq!(sub("${E:-d}", &e).unwrap(), "d");
    assert_eq!(sub("${E?m}", &e).unwrap(), "");
    assert_eq!(sub("${E:?m}", &e).unwrap_err(), TemplateError::Required { var: "E".into(), message: "m".into() });
}

#[test]
fn names_are_ascii_letters_digits_underscore_case_insensitive() {
    assert_eq!(sub("$a_1B.", &[("a_1B", "v")]).unwrap(), "v.");
    assert_eq!(sub("$_", &[("_", "u")]).unwrap(), "u");
    assert_eq!(sub("$é", &[]).map_err(|_| ()), Err(()));
}

// ---------------------------------------------------------------------------------------------------------------
// interpolate() on whole documents: positions, paths, casts

fn load(src: &str) -> Node {
    yaml::parse(src, 3).unwrap()
}

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[test]
fn missing_required_variable_reports_position_path_and_message() {
    let mut doc = load(
        "version: \"3.9\"\nservices:\n  db:\n    image: postgres\n    environment:\n      POSTGRES_PASSWORD: ${DB_PASSWORD:?set it}\n",
    );
    let diags = interpolate(&mut doc, &Env::new());
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert!(d.is_error());
    assert_eq!(d.code, "interpolate.required");
    assert_eq!(d.path, "services.db.environment.POSTGRES_PASSWORD");
    assert_eq!(d.pos, Some(Pos { file: 3, line: 6, col: 26 }));
    assert_eq!(d.message, "required variable DB_PASSWORD is missing a value: set it");
    let hint = d.hint.as_deref().unwrap();
    assert!(hint.contains("environment") && hint.contains(".env") && hint.contains("--env-file"), "{hint}");
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let mut doc = load(
        "services:\n  a:\n    image: \"${A:?no image}\"\n    command: [\"x\", \"$}\"]\n  b:\n    image: ${B?}\n    deploy:\n      replicas: ${R}\n",
    );
    let diags = interpolate(&mut doc, &env(&[("R", "many")]));
    let got: Vec<(&str, &str)> = diags.iter().map(|d| (d.code, d.path.as_str())).collect();
    assert_eq!(
        got,
        vec![
            ("interpolate.required", "services.a.image"),
            ("interpolate.invalid", "services.a.command[1]"),
            ("interpolate.required", "services.b.image"),
            ("interpolate.cast", "services.b.deploy.replicas"),
        ]
    );
    assert_eq!(diags[1].pos.map(|p| (p.line, p.col)), Some((4, 20)));
    assert!(diags[1].message.contains("`$}`"), "{}", diags[1].message);
    assert_eq!(diags[2].message, "required variable B is missing a value");
    assert!(
        diags[3].message.contains("\"many\"") && diags[3].message.contains("not an integer"),
        "{}",
        diags[3].message
    );
}

#[test]
fn cast_paths_convert_substituted_strings() {
    let mut doc = load(concat!(
        "services:\n  web:\n    image: nginx\n    read_only: $RO\n    deploy:\n      replicas: ${N}\n",
        "      update_config:\n        max_failure_ratio: ${F}\n    ports:\n      - target: ${P}\n        published: \"8080\"\n",
        "    ulimits:\n      nofile: {soft: $N, hard: $N}\n      nproc: $N\n",
        "networks:\n  n:\n    external: ${NO}\n    labels:\n      x: ${N}\n",
    ));
    let diags = interpolate(&mut doc, &env(&[("RO", "Yes"), ("N", "3"), ("F", "0.25"), ("P", "80"), ("NO", "off")]));
    assert!(diags.is_empty(), "{diags:?}");
    let at = |p: &[&str]| doc.at(p).unwrap().value.clone();
    assert_eq!(at(&["services", "web", "read_only"]), Value::Bool(true));
    assert_eq!(at(&["services", "web", "deploy", "replicas"]), Value::Int(3));
    assert_eq!(at(&["services", "web", "deploy", "update_config", "max_failure_ratio"]), Value::Float(0.25));
    let port = &doc.at(&["services", "web", "ports"]).unwrap().as_seq().unwrap()[0];
    assert_eq!(port.get("target").unwrap().value, Value::Int(80));
    // Unchanged by substitution: not cast, exactly like docker/cli.
    assert_eq!(port.get("published").unwrap().value, Value::Str("8080".into()));
    assert_eq!(at(&["services", "web", "ulimits", "nofile", "soft"]), Value::Int(3));
    assert_eq!(at(&["services", "web", "ulimits", "nproc"]), Value::Int(3));
    assert_eq!(at(&["networks", "n", "external"]), Value::Bool(false));
    // Not a cast path: stays a string.
    assert_eq!(at(&["networks", "n", "labels", "x"]), Value::Str("3".into()));
    // The converted value keeps its position.
    let r = doc.at(&["services", "web", "deploy", "replicas"]).unwrap();
    assert_eq!((r.pos.line, r.pos.col), (6, 17));
}

#[test]
fn cast_failures_are_diagnostics_at_the_value() {
    let mut doc = load("services:\n  web:\n    tty: ${T}\n    healthcheck:\n      retries: x$N\n");
    let diags = interpolate(&mut doc, &env(&[("T", "maybe"), ("N", "1")]));
    assert_eq!(diags.len(), 2, "{diags:?}");
    assert_eq!((diags[0].code, diags[0].path.as_str()), ("interpolate.cast", "services.web.tty"));
    assert_eq!(diags[0].pos.map(|p| (p.line, p.col)), Some((3, 10)));
    assert!(diags[0].message.contains("boolean"), "{}", diags[0].message);
    assert!(diags[0].hint.as_deref().unwrap().contains("true"));
    assert_eq!(diags[1].path, "services.web.healthcheck.retries");
}

#[test]
fn dotted_service_names_escape_casts_like_docker_cli() {
    // docker/cli splits its path on `.`, so `my.web` makes the path too long to match `services.*.deploy.replicas`.
    let mut doc = load("services:\n  my.web:\n    deploy:\n      replicas: ${N}\n");
    assert!(interpolate(&mut doc, &env(&[("N", "2")])).is_empty());
    assert_eq!(doc.at(&["services", "my.web", "deploy", "replicas"]).unwrap().value, Value::Str("2".into()));
}

#[test]
fn keys_and_version_are_not_interpolated_but_extensions_are() {
    let mut doc =
        load("version: \"$V\"\nx-berth:\n  domain: ${D}\nx-other: $D\nservices:\n  web:\n    labels:\n      $K: v\n");
    let diags = interpolate(&mut doc, &env(&[("V", "3"), ("D", "example.org"), ("K", "k")]));
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(doc.get("version").unwrap().as_str(), Some("$V"));
    assert_eq!(doc.at(&["x-berth", "domain"]).unwrap().as_str(), Some("example.org"));
    assert_eq!(doc.get("x-other").unwrap().as_str(), Some("example.org"));
    assert!(doc.at(&["services", "web", "labels", "$K"]).is_some());
}

#[test]
fn unset_plain_variables_are_warnings_and_become_empty() {
    let mut doc = load("services:\n  web:\n    image: \"nginx:${TAG}\"\n    command: $$HOME ${X:-x}\n");
    let diags = interpolate(&mut doc, &Env::new());
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(!diags[0].is_error());
    assert_eq!((diags[0].code, diags[0].path.as_str()), ("interpolate.unset", "services.web.image"));
    assert_eq!(doc.at(&["services", "web", "image"]).unwrap().as_str(), Some("nginx:"));
    assert_eq!(doc.at(&["services", "web", "command"]).unwrap().as_str(), Some("$HOME x"));
}

#[test]
fn env_precedence_set_if_missing_keeps_the_first_source() {
    let mut e = env(&[("A", "process")]);
    e.set_if_missing("A", "dotenv");
    e.set_if_missing("B", "dotenv");
    assert_eq!(e.get("A"), Some("process"));
    assert_eq!(e.get("B"), Some("dotenv"));
    e.set("A", "forced");
    assert_eq!(e.iter().collect::<Vec<_>>(), vec![("A", "forced"), ("B", "dotenv")]);
}

fn strings(n: &Node, out: &mut Vec<String>) {
    match &n.value {
        Value::Str(s) => out.push(s.clone()),
        Value::Seq(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Map(m) => m.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[test]
fn real_world_files_interpolate_cleanly() {
    let files = [
        "awesome-compose/postgresql-pgadmin/compose.yaml",
        "awesome-compose/pihole-cloudflared-DoH/compose.yaml",
        "awesome-compose/wireguard/compose.yaml",
        "awesome-compose/plex/compose.yaml",
        "compose-go/cli/testdata/simple/compose-with-variables.yaml",
        "compose-go/cli/testdata/env-file/compose-with-env-files.yaml",
    ];
    for f in files {
        let doc = yaml::parse(&read(f), 0).unwrap();
        let mut all = Vec::new();
        strings(&doc, &mut all);
        let vars: Vec<(String, String)> =
            all.iter().flat_map(|s| extract_variables(s)).map(|(n, _)| (n.clone(), format!("v_{n}"))).collect();
        assert!(!vars.is_empty(), "{f}");
        // Every variable set: no diagnostics, no `${` left.
        let mut full = doc.clone();
        let diags = interpolate(&mut full, &Env::from_pairs(vars));
        assert!(diags.is_empty(), "{f}: {diags:?}");
        let mut after = Vec::new();
        strings(&full, &mut after);
        assert!(after.iter().all(|s| !s.contains("${")), "{f}: {after:?}");
        // Nothing set: only warnings.
        let mut empty = doc.clone();
        let diags = interpolate(&mut empty, &Env::new());
        assert!(!diags.is_empty() && diags.iter().all(|d| d.code == "interpolate.unset"), "{f}: {diags:?}");
    }
    // Only `$$` escapes here: nothing to report.
    let mut doc = yaml::parse(&read("awesome-compose/nginx-flask-mysql/compose.yaml"), 0).unwrap();
    assert_eq!(interpolate(&mut doc, &Env::new()), vec![]);
    let mut all = Vec::new();
    strings(&doc, &mut all);
    assert!(all.iter().any(|s| s.contains("--password=\"$(cat /run/secrets/db-password)\"")), "{all:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// env_file (docker/cli kvfile)

#[test]
fn docker_cli_example_env_files_parse() {
    let one = parse_env_file(&read("docker-cli/cli/compose/loader/example1.env"), 0).unwrap();
    let two = parse_env_file(&read("docker-cli/cli/compose/loader/example2.env"), 0).unwrap();
    let s = |a: &str, b: &str| (a.to_string(), Some(b.to_string()));
    assert_eq!(one, vec![s("FOO", "foo_from_env_file"), s("BAR", "bar_from_env_file"), s("BAZ", "baz_from_env_file")]);
    assert_eq!(two, vec![s("BAR", "bar_from_env_file_2"), s("QUX", "quz_from_env_file_2")]);
}

#[test]
fn env_file_takes_values_verbatim() {
    // Checked with `docker stack config` 28.2.2.
    let text = "A=\"quoted\"\nB='single'\n  C= lead \nD=\"mis'\n#c\nE\nF=x=y\n\u{feff}G=1\nH=\r\n\tI=${X}\n";
    let v = parse_env_file(text, 0).unwrap();
    let s = |a: &str, b: &str| (a.to_string(), Some(b.to_string()));
    assert_eq!(
        v,
        vec![
            s("A", "\"quoted\""),
            s("B", "'single'"),
            s("C", " lead "),
            s("D", "\"mis'"),
            ("E".to_string(), None),
            s("F", "x=y"),
            s("\u{feff}G", "1"),
            s("H", ""),
            s("I", "${X}"),
        ]
    );
    assert_eq!(parse_env_file("\u{feff}A=1", 0).unwrap(), vec![s("A", "1")]);
}

#[test]
fn env_file_errors_name_the_line() {
    let e = parse_env_file("A=1\n\nBAD KEY=1\n", 7).unwrap_err();
    assert_eq!(e.code, "env.syntax");
    assert_eq!(e.pos, Some(Pos { file: 7, line: 3, col: 1 }));
    assert!(e.message.contains("BAD KEY"), "{}", e.message);
    let e = parse_env_file("A=1\n  =1\n", 0).unwrap_err();
    assert_eq!(e.pos.map(|p| (p.line, p.col)), Some((2, 3)));
    assert!(e.message.contains("no variable name"));
    let e = parse_env_file("BARE\tKEY\n", 0).unwrap_err();
    assert_eq!(e.pos.map(|p| p.line), Some(1));
    let e = parse_env_file_bytes(b"A=1\nB=\xff\n", 0).unwrap_err();
    assert_eq!((e.code, e.pos.map(|p| (p.line, p.col))), ("env.syntax", Some((2, 3))));
    assert!(e.message.contains("UTF-8"));
    assert_eq!(parse_env_file_bytes(b"A=1\n", 0).unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------------------------
// .env (compose-go dotenv fixtures; expectations from dotenv/godotenv_test.go)

fn dotenv_fixture(name: &str, lookup: &dyn Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    parse_dotenv(&read(&format!("compose-go/dotenv/fixtures/{name}")), 0, lookup)
        .unwrap_or_else(|e| panic!("{name}: {e:?}"))
        .into_iter()
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn dotenv_plain_and_bom_fixtures() {
    let want = map(&[
        ("OPTION_A", "1"),
        ("OPTION_B", "2"),
        ("OPTION_C", "3"),
        ("OPTION_D", "4"),
        ("OPTION_E", "5"),
        ("OPTION_F", ""),
        ("OPTION_G", ""),
        ("OPTION_H", "my string"),
    ]);
    assert_eq!(dotenv_fixture("plain.env", &no_env), want);
    assert_eq!(dotenv_fixture("utf8-bom.env", &no_env), want);
}

#[test]
fn dotenv_exported_equals_custom_special_fixtures() {
    assert_eq!(dotenv_fixture("exported.env", &no_env), map(&[("OPTION_A", "2"), ("OPTION_B", "\\n")]));
    assert_eq!(
        dotenv_fixture("equals.env", &no_env),
        map(&[("OPTION_A", "postgres://localhost:5432/database?sslmode=disable")])
    );
    assert_eq!(dotenv_fixture("custom.format", &no_env), map(&[("FOO", "BAR"), ("ZOT", "QIX")]));
    assert_eq!(
        dotenv_fixture("special.env", &no_env),
        map(&[("VAR.WITH.DOTS", "dots"), ("VAR_WITH_UNDERSCORES", "underscores"), ("VAR-WITH-DASHES", "dashes")])
    );
}

#[test]
fn dotenv_quoted_and_unquoted_fixtures() {
    assert_eq!(
        dotenv_fixture("quoted.env", &no_env),
        map(&[
            ("OPTION_A", "1"),
            ("OPTION_B", "2"),
            ("OPTION_C", ""),
            ("OPTION_D", "\\n"),
            ("OPTION_E", "1"),
            ("OPTION_F", "2"),
            ("OPTION_G", ""),
            ("OPTION_H", "\n"),
            ("OPTION_I", "echo 'asd'"),
            ("OPTION_J", "first line\nsecond line\nthird line\nand so on"),
            ("OPTION_K", "Let's go!"),
            ("OPTION_Z", "last value"),
        ])
    );
    assert_eq!(
        dotenv_fixture("unquoted.env", &no_env),
        map(&[
            ("OPTION_A", "some quoted phrase"),
            ("OPTION_B", "first one with an unquoted phrase"),
            ("OPTION_C", "then another one with an unquoted phrase"),
            ("OPTION_D", "then another one with an unquoted phrase special è char"),
            ("OPTION_E", "then another one quoted phrase"),
        ])
    );
}

#[test]
fn dotenv_substitution_fixtures() {
    // godotenv_test.go says "11" for an older fixture (`${OPTION_A}${OPTION_B}`); this one has a `_` between.
    let want = map(&[("OPTION_A", "1"), ("OPTION_B", "1"), ("OPTION_C", "1"), ("OPTION_D", "1_1"), ("OPTION_E", "")]);
    assert_eq!(dotenv_fixture("substitutions.env", &no_env), want);
    assert_eq!(dotenv_fixture("substitutions-default.env", &no_env), want);
    // The lookup (process environment) is consulted before earlier lines.
    let l = |k: &str| (k == "OPTION_A").then(|| "env".to_string());
    let got = dotenv_fixture("substitutions.env", &l);
    assert_eq!(got["OPTION_A"], "1");
    assert_eq!(got["OPTION_B"], "env");
}

#[test]
fn dotenv_inherited_fixtures() {
    let l = |k: &str| (k == "VAR_TO_BE_LOADED_FROM_OS_ENV").then(|| "SOME_RANDOM_VALUE".to_string());
    assert_eq!(
        dotenv_fixture("inherited-multi-var.env", &l),
        map(&[("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE"), ("foo", "bar"), ("bar", "baz")])
    );
    assert_eq!(
        dotenv_fixture("inherited-single-var.env", &l),
        map(&[("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE")])
    );
    assert_eq!(dotenv_fixture("inherited-not-found.env", &no_env), map(&[]));
}

#[test]
fn dotenv_invalid_fixture_names_the_line() {
    let e = parse_dotenv(&read("compose-go/dotenv/fixtures/invalid1.env"), 2, &no_env).unwrap_err();
    assert_eq!(e.code, "env.syntax");
    assert_eq!(e.pos.map(|p| (p.file, p.line)), Some((2, 7)));
    assert!(e.message.contains("INVALID LINE"), "{}", e.message);
}

#[test]
fn compose_go_cli_env_files() {
    let p = parse_dotenv(&read("compose-go/cli/testdata/env-file/.env"), 0, &no_env).unwrap();
    assert_eq!(p[2], ("PORT".to_string(), "8000".to_string()));
    let p = parse_dotenv(&read("compose-go/cli/testdata/simple/.env"), 0, &no_env).unwrap();
    assert_eq!(p, vec![("PUBLIC_PORT".to_string(), "8000".to_string())]);
    let base = parse_dotenv(&read("compose-go/types/fixtures/base.env"), 0, &no_env).unwrap();
    let base: BTreeMap<_, _> = base.into_iter().collect();
    assert_eq!(base["INTERPOLATED_FOO"], "foo_from_base.env");
}

#[test]
fn dotenv_parsing_rules_from_godotenv_tests() {
    let one = |line: &str| -> (String, String) {
        let v = parse_dotenv(line, 0, &no_env).unwrap_or_else(|e| panic!("{line:?}: {e:?}"));
        v.last().cloned().unwrap_or_default()
    };
    let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(one("FOO=bar"), kv("FOO", "bar"));
    assert_eq!(one("FOO =bar"), kv("FOO", "bar"));
    assert_eq!(one("FOO= bar"), kv("FOO", "bar"));
    assert_eq!(one("FOO=\"bar\""), kv("FOO", "bar"));
    assert_eq!(one("FOO='bar'"), kv("FOO", "bar"));
    assert_eq!(one("FOO=\"escaped\\\"bar\""), kv("FOO", "escaped\"bar"));
    assert_eq!(one("FOO=\"'d'\""), kv("FOO", "'d'"));
    assert_eq!(one("OPTION_A: 1"), kv("OPTION_A", "1"));
    assert_eq!(one("OPTION_A: Foo=bar"), kv("OPTION_A", "Foo=bar"));
    assert_eq!(one("OPTION_A=1:B"), kv("OPTION_A", "1:B"));
    assert_eq!(one("export OPTION_A=2"), kv("OPTION_A", "2"));
    assert_eq!(one("export exportFoo=2"), kv("exportFoo", "2"));
    assert_eq!(one("exportFOO=2"), kv("exportFOO", "2"));
    assert_eq!(one("export_FOO =2"), kv("export_FOO", "2"));
    assert_eq!(one("export.FOO= 2"), kv("export.FOO", "2"));
    assert_eq!(one("export\tOPTION_A=2"), kv("OPTION_A", "2"));
    assert_eq!(one("  export OPTION_A=2"), kv("OPTION_A", "2"));
    assert_eq!(one("FOO=\"bar\\nbaz\""), kv("FOO", "bar\nbaz"));
    assert_eq!(one("FOO.BAR=foobar"), kv("FOO.BAR", "foobar"));
    assert_eq!(one("FOO=foobar="), kv("FOO", "foobar="));
    assert_eq!(one("FOO=bar "), kv("FOO", "bar"));
    assert_eq!(one("FOO=bar # this is foo"), kv("FOO", "bar"));
    assert_eq!(one("FOO=bar#baz"), kv("FOO", "bar#baz"));
    assert_eq!(one("FOO=\"bar#baz\" # comment"), kv("FOO", "bar#baz"));
    assert_eq!(one("FOO='bar#baz' # comment"), kv("FOO", "bar#baz"));
    assert_eq!(one("\tKEY=value"), kv("KEY", "value"));
    assert_eq!(one("FOO=test\nBAR=$FOO"), kv("BAR", "test"));
    assert_eq!(one("FOO=test\nBAR=${FOO}bar"), kv("BAR", "testbar"));
    assert_eq!(one("BAR=$FOO"), kv("BAR", ""));
    assert_eq!(one("FOO=test\nBAR=\"quote $FOO\""), kv("BAR", "quote test"));
    assert_eq!(one("BAR='quote $FOO'"), kv("BAR", "quote $FOO"));
    assert_eq!(one("FOO=\"foo\\$BAR\""), kv("FOO", "foo$BAR"));
    assert_eq!(one("FOO=\"foo\\${BAR}\""), kv("FOO", "foo${BAR}"));
    assert_eq!(one("FOO=test\nBAR=\"foo\\${FOO} ${FOO}\""), kv("BAR", "foo${FOO} test"));
    assert_eq!(one("FOO=$$x"), kv("FOO", "$x"));
    assert_eq!(one("FOO=\"a\\tb\\\\c\\qd\""), kv("FOO", "a\tb\\c\\qd"));
    assert_eq!(one("FOO=a\r\nBAR=b\r\n"), kv("BAR", "b"));
    assert_eq!(one("A=1\nA=2"), kv("A", "2"));
    assert_eq!(one("TEST_URLS=\"a:1\nb:2\""), kv("TEST_URLS", "a:1\nb:2"));
}

#[test]
fn dotenv_errors_name_the_line() {
    let err = |t: &str| parse_dotenv(t, 5, &no_env).unwrap_err();
    let e = err("A=1\nlol$wut\n");
    assert_eq!((e.code, e.pos.map(|p| (p.file, p.line, p.col))), ("env.syntax", Some((5, 2, 4))));
    let e = err("A=1\n\nB=\"open\n\n");
    assert_eq!(e.pos.map(|p| p.line), Some(3));
    assert!(e.message.contains("unterminated"), "{}", e.message);
    let e = err("A=1\n=value\n");
    assert_eq!(e.pos.map(|p| p.line), Some(2));
    let e = err("# c\nA=\"x\" y\n");
    assert_eq!(e.pos.map(|p| (p.line, p.col)), Some((2, 7)));
    let e = err("A=${X:?need X}\n");
    assert!(e.message.contains("required variable X"), "{}", e.message);
    let e = err("A B=1\n");
    assert_eq!(e.pos.map(|p| p.line), Some(1));
}

// ---------------------------------------------------------------------------------------------------------------
// Properties

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn substitute_never_panics(s in any::<String>()) {
            let _ = substitute(&s, &|k: &str| k.len().is_multiple_of(2).then(|| k.to_string()));
            let _ = extract_variables(&s);
        }

        #[test]
        fn substitute_never_panics_on_template_like_text(s in "[$\\{\\}:?\\-a-zA-Z_0-9 é]{0,40}") {
            let _ = substitute(&s, &|k: &str| k.len().is_multiple_of(2).then(|| k.to_string()));
            let _ = substitute_strict(&s, &|_: &str| None);
        }

        #[test]
        fn escaping_dollars_round_trips(s in any::<String>()) {
            let escaped = s.replace('$', "$$");
            prop_assert_eq!(substitute(&escaped, &|_: &str| Some("X".into())).unwrap(), s);
        }

        #[test]
        fn dotenv_and_env_file_never_panic(s in "[A-Za-z_=#'\"\\\\$ \t\r\n{}:.é?+-]{0,60}") {
            let _ = parse_dotenv(&s, 0, &|_: &str| None);
            let _ = parse_env_file(&s, 0);
        }
    }
}
