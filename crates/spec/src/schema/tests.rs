use super::spec::Pat;
use super::*;
use crate::yaml::parse;

#[test]
fn key_patterns_match_like_go_regexp() {
    assert!(Pat::Name.matches("web-1.a_b"));
    assert!(!Pat::Name.matches("my web"));
    assert!(!Pat::Name.matches(""));
    assert!(Pat::Line.matches("a b"));
    assert!(!Pat::Line.matches("a\nb"));
    assert!(!Pat::Line.matches(""));
    assert!(Pat::NonEmpty.matches("a\nb"));
    assert!(!Pat::NonEmpty.matches("\n"));
    assert!(!Pat::NonEmpty.matches(""));
    assert!(Pat::Lower.matches("nofile"));
    assert!(!Pat::Lower.matches("NOFILE"));
}

#[test]
fn version_parse_accepts_only_schema_file_names() {
    assert_eq!(Version::parse("3.0"), Some(Version::OLDEST));
    assert_eq!(Version::parse("3.13"), Some(Version::LATEST));
    for bad in ["3", "3.", "3.00", "3.01", "3.14", "2.1", "4.0", "3.1.0", " 3.1"] {
        assert_eq!(Version::parse(bad), None, "{bad}");
    }
    assert_eq!(Version::all().count(), 14);
}

#[test]
fn did_you_mean_uses_edit_distance_and_prefixes() {
    let keys = ["image", "environment", "ports", "replicas", "aliases"];
    assert_eq!(hints::closest("imgae", keys.iter().copied()), Some("image"));
    assert_eq!(hints::closest("enviroment", keys.iter().copied()), Some("environment"));
    assert_eq!(hints::closest("alias", keys.iter().copied()), Some("aliases"));
    assert_eq!(hints::closest("zzz", keys.iter().copied()), None);
}

#[test]
fn integral_floats_are_integers_like_gojsonschema() {
    let doc = parse("services:\n  a:\n    image: x\n    deploy:\n      replicas: 3.0\n", 0).unwrap();
    assert!(validate(&doc, Version::LATEST).is_empty());
    let doc = parse("services:\n  a:\n    image: x\n    deploy:\n      replicas: 3.5\n", 0).unwrap();
    assert_eq!(validate(&doc, Version::LATEST)[0].code, "schema.type");
}

#[test]
fn version_required_before_3_10_when_validating_a_versionless_tree() {
    let doc = parse("services: {}\n", 0).unwrap();
    assert_eq!(validate(&doc, Version::parse("3.9").unwrap())[0].code, "schema.required");
    assert!(validate(&doc, Version::parse("3.10").unwrap()).is_empty());
}

#[test]
fn build_object_allows_unknown_keys_from_3_11() {
    let text = "version: \"VER\"\nservices:\n  a:\n    image: x\n    build:\n      context: .\n      ssh: default\n";
    let at = |v: &str| validate(&parse(&text.replace("VER", v), 0).unwrap(), Version::parse(v).unwrap());
    assert_eq!(at("3.10").len(), 1);
    assert!(at("3.11").is_empty());
}

fn walk_objects(shape: &spec::Shape, out: &mut Vec<&'static spec::Obj>) {
    use spec::Shape as S;
    match shape {
        S::Object(o) => walk_obj(o, out),
        S::Array(items, _) => walk_objects(items, out),
        S::OneOf(alts) => alts.iter().for_each(|a| walk_objects(a, out)),
        S::Versioned(list) => list.iter().for_each(|(_, s)| walk_objects(s, out)),
        S::Scalar(..) | S::Enum(_) | S::IntMin(_) => {}
    }
}

fn walk_obj(o: &'static spec::Obj, out: &mut Vec<&'static spec::Obj>) {
    out.push(o);
    for p in o.props {
        walk_objects(&p.shape, out);
    }
    for (_, s) in o.patterns {
        walk_objects(s, out);
    }
}

#[test]
fn property_names_are_unique_in_every_object() {
    let mut objs = Vec::new();
    walk_obj(&spec::ROOT, &mut objs);
    assert!(objs.len() > 40, "walked only {} objects", objs.len());
    for o in objs {
        let mut names: Vec<&str> = o.props.iter().map(|p| p.name).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate key in {:?}", o.props.iter().map(|p| p.name).collect::<Vec<_>>());
    }
}
