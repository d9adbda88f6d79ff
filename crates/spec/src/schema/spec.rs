//! The compose file format 3.0–3.13 as data: what `docker stack deploy` accepts, key by key.
//!
//! Written from docker/cli's `config_schema_v3.X.json` (draft-04). One description covers every
//! version: a key carries the first version that knows it, and the few values whose shape changed
//! use [`Shape::Versioned`]. `tests/schema.rs` renders this description back to JSON Schema
//! ([`super::json_schema`]) and compares it with each real schema file.

use super::Version;

/// First minor version a key appeared in (all versions here are 3.x).
const fn v(minor: u8) -> Version {
    Version { major: 3, minor }
}

/// JSON types a value may have, as bit flags.
pub(crate) type Types = u8;
pub(crate) const STRING: Types = 1;
pub(crate) const NUMBER: Types = 2;
pub(crate) const INTEGER: Types = 4;
pub(crate) const BOOLEAN: Types = 8;
pub(crate) const NULL: Types = 16;

/// Custom string formats docker/cli registers with its JSON Schema validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `nat.ParsePortSpec` syntax: `[ip:][host[-range]:]container[-range][/proto]`.
    Ports,
    /// Go's `time.ParseDuration` syntax.
    Duration,
    /// Registered by docker/cli with a checker that accepts everything.
    Expose,
}

/// The key patterns the schemas use in `patternProperties`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pat {
    /// `^[a-zA-Z0-9._-]+$`: names of services, networks, volumes, secrets, configs.
    Name,
    /// `^.+$`: any key without a line break.
    Line,
    /// `.+`: any key with at least one character that is not a line break.
    NonEmpty,
    /// `^[a-z]+$`: ulimit names.
    Lower,
}

impl Pat {
    /// The regular expression as written in the JSON Schema.
    pub(crate) fn regex(self) -> &'static str {
        match self {
            Pat::Name => "^[a-zA-Z0-9._-]+$",
            Pat::Line => "^.+$",
            Pat::NonEmpty => ".+",
            Pat::Lower => "^[a-z]+$",
        }
    }

    /// Whether `key` matches, with Go `regexp` semantics (`.` excludes `\n`, `$` is end of text).
    pub(crate) fn matches(self, key: &str) -> bool {
        match self {
            Pat::Name => !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            Pat::Line => !key.is_empty() && !key.contains('\n'),
            Pat::NonEmpty => key.chars().any(|c| c != '\n'),
            Pat::Lower => !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase()),
        }
    }
}

/// Whether keys other than the listed ones are allowed (`additionalProperties`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Additional {
    /// No `additionalProperties` (or `true`): anything goes.
    Allowed,
    /// `additionalProperties: false`.
    Forbidden,
    /// `false` before the given version, `true` from it on.
    ForbiddenBefore(Version),
}

/// What a value must look like.
#[derive(Debug)]
pub(crate) enum Shape {
    /// A scalar of one of `types`, optionally with a string format.
    Scalar(Types, Option<Format>),
    /// A string from a fixed set.
    Enum(&'static [&'static str]),
    /// An integer not below the minimum.
    IntMin(i64),
    /// A list; `unique` is `uniqueItems`.
    Array(&'static Shape, bool),
    /// A mapping.
    Object(&'static Obj),
    /// Exactly one of the alternatives.
    OneOf(&'static [Shape]),
    /// A shape that changed: the entry with the greatest `since <= version` applies.
    Versioned(&'static [(Version, Shape)]),
}

/// A mapping: its known keys, key patterns and what else it allows.
#[derive(Debug)]
pub(crate) struct Obj {
    /// Types accepted besides a mapping (`"type": ["object", "null"]`, `["boolean", "object"]`).
    pub(crate) also: Types,
    /// Named keys.
    pub(crate) props: &'static [Prop],
    /// Keys matching a pattern, and the shape of their values.
    pub(crate) patterns: &'static [(Pat, Shape)],
    /// `^x-` extension keys are allowed from this version on.
    pub(crate) extensions: Option<Version>,
    /// Unlisted keys.
    pub(crate) additional: Additional,
    /// Keys that must be present, before the given version (exclusive).
    pub(crate) required: &'static [&'static str],
    /// `required` applies to versions below this one.
    pub(crate) required_before: Version,
}

/// One named key of a mapping.
#[derive(Debug)]
pub(crate) struct Prop {
    /// The key.
    pub(crate) name: &'static str,
    /// First version that accepts it.
    pub(crate) since: Version,
    /// Its value.
    pub(crate) shape: Shape,
}

const ALWAYS: Version = Version { major: 255, minor: 255 };

const fn p(name: &'static str, since: u8, shape: Shape) -> Prop {
    Prop { name, since: v(since), shape }
}

const fn obj(props: &'static [Prop], additional: Additional) -> Obj {
    Obj { also: 0, props, patterns: &[], extensions: None, additional, required: &[], required_before: ALWAYS }
}

use Additional::{Allowed, Forbidden};
use Shape::{Array, Object, OneOf, Scalar, Versioned};

const STR: Shape = Scalar(STRING, None);
const INT: Shape = Scalar(INTEGER, None);
const NUM: Shape = Scalar(NUMBER, None);
const BOOL: Shape = Scalar(BOOLEAN, None);
const DURATION: Shape = Scalar(STRING, Some(Format::Duration));
const STR_LIST: Shape = Array(&STR, false);
const LIST_OF_STRINGS: Shape = Array(&STR, true);
const STRING_OR_LIST: Shape = OneOf(&[STR, LIST_OF_STRINGS]);
const COMMAND: Shape = OneOf(&[STR, STR_LIST]);
const DICT: Obj = Obj { patterns: &[(Pat::NonEmpty, Scalar(STRING | NUMBER | NULL, None))], ..obj(&[], Forbidden) };
const LIST_OR_DICT: Shape = OneOf(&[Object(&DICT), LIST_OF_STRINGS]);
const OPTS: Obj = Obj { patterns: &[(Pat::Line, Scalar(STRING | NUMBER, None))], ..obj(&[], Allowed) };
const DRIVER_OPTS: Shape = Object(&OPTS);

/// The whole file.
pub(crate) static ROOT: Obj = Obj {
    props: &[
        p("version", 0, STR),
        p("services", 0, Object(&Obj { patterns: &[(Pat::Name, Object(&SERVICE))], ..obj(&[], Forbidden) })),
        p("networks", 0, Object(&Obj { patterns: &[(Pat::Name, Object(&NETWORK))], ..obj(&[], Allowed) })),
        p("volumes", 0, Object(&Obj { patterns: &[(Pat::Name, Object(&VOLUME))], ..obj(&[], Forbidden) })),
        p("secrets", 1, Object(&Obj { patterns: &[(Pat::Name, Object(&SECRET))], ..obj(&[], Forbidden) })),
        p("configs", 3, Object(&Obj { patterns: &[(Pat::Name, Object(&CONFIG))], ..obj(&[], Forbidden) })),
    ],
    extensions: Some(v(4)),
    required: &["version"],
    required_before: v(10),
    ..obj(&[], Forbidden)
};

const FILE_REF: Shape = Array(
    &OneOf(&[
        STR,
        Object(&obj(
            &[p("source", 0, STR), p("target", 0, STR), p("uid", 0, STR), p("gid", 0, STR), p("mode", 0, NUM)],
            Allowed,
        )),
    ]),
    false,
);

const PORTS: Shape = Versioned(&[
    (v(0), Array(&Scalar(STRING | NUMBER, Some(Format::Ports)), true)),
    (
        v(2),
        Array(
            &OneOf(&[
                Scalar(NUMBER, Some(Format::Ports)),
                Scalar(STRING, Some(Format::Ports)),
                Object(&obj(
                    &[p("mode", 2, STR), p("target", 2, INT), p("published", 2, INT), p("protocol", 2, STR)],
                    Forbidden,
                )),
            ]),
            true,
        ),
    ),
]);

const SERVICE_VOLUMES: Shape = Versioned(&[
    (v(0), LIST_OF_STRINGS),
    (
        v(2),
        Array(
            &OneOf(&[
                STR,
                Object(&Obj {
                    required: &["type"],
                    required_before: ALWAYS,
                    ..obj(
                        &[
                            p("type", 2, STR),
                            p("source", 2, STR),
                            p("target", 2, STR),
                            p("read_only", 2, BOOL),
                            p("consistency", 2, STR),
                            p("bind", 2, Object(&obj(&[p("propagation", 2, STR)], Allowed))),
                            p("volume", 2, Object(&obj(&[p("nocopy", 2, BOOL)], Allowed))),
                            p("tmpfs", 6, Object(&obj(&[p("size", 6, Shape::IntMin(0))], Allowed))),
                        ],
                        Forbidden,
                    )
                }),
            ]),
            false,
        ),
    ),
]);

const NETWORK_ENTRY: Obj = obj(
    &[
        p("aliases", 0, LIST_OF_STRINGS),
        p("driver_opts", 13, DRIVER_OPTS),
        p("ipv4_address", 0, STR),
        p("ipv6_address", 0, STR),
    ],
    Forbidden,
);

const SERVICE_NETWORKS: Shape = OneOf(&[
    LIST_OF_STRINGS,
    Object(&Obj {
        patterns: &[(Pat::Name, OneOf(&[Object(&NETWORK_ENTRY), Scalar(NULL, None)]))],
        ..obj(&[], Forbidden)
    }),
]);

const ULIMITS: Obj = Obj {
    patterns: &[(
        Pat::Lower,
        OneOf(&[
            INT,
            Object(&Obj { required: &["soft", "hard"], ..obj(&[p("hard", 0, INT), p("soft", 0, INT)], Forbidden) }),
        ]),
    )],
    ..obj(&[], Allowed)
};

const BUILD: Shape = OneOf(&[
    STR,
    Object(&obj(
        &[
            p("context", 0, STR),
            p("dockerfile", 0, STR),
            p("args", 0, LIST_OR_DICT),
            p("labels", 3, LIST_OR_DICT),
            p("cache_from", 2, LIST_OF_STRINGS),
            p("network", 4, STR),
            p("target", 4, STR),
            p("shm_size", 5, Scalar(INTEGER | STRING, None)),
            p("extra_hosts", 9, LIST_OR_DICT),
        ],
        Additional::ForbiddenBefore(v(11)),
    )),
]);

/// The health check duration keys were plain strings before 3.4.
const HEALTH_DURATION: Shape = Versioned(&[(v(0), STR), (v(4), DURATION)]);

const HEALTHCHECK: Obj = obj(
    &[
        p("disable", 0, BOOL),
        p("interval", 0, HEALTH_DURATION),
        p("retries", 0, NUM),
        p("test", 0, COMMAND),
        p("timeout", 0, HEALTH_DURATION),
        p("start_period", 4, DURATION),
        p("start_interval", 12, DURATION),
    ],
    Forbidden,
);

const UPDATE_CONFIG: Obj = obj(
    &[
        p("parallelism", 0, INT),
        p("delay", 0, DURATION),
        p("failure_action", 0, STR),
        p("monitor", 0, DURATION),
        p("max_failure_ratio", 0, NUM),
        p("order", 4, Shape::Enum(&["start-first", "stop-first"])),
    ],
    Forbidden,
);

const GENERIC_RESOURCES: Shape = Array(
    &Object(&obj(
        &[p("discrete_resource_spec", 5, Object(&obj(&[p("kind", 5, STR), p("value", 5, NUM)], Forbidden)))],
        Forbidden,
    )),
    false,
);

const DEPLOY: Obj = Obj {
    also: NULL,
    ..obj(
        &[
            p("mode", 0, STR),
            p("endpoint_mode", 2, STR),
            p("replicas", 0, INT),
            p("labels", 0, LIST_OR_DICT),
            p("rollback_config", 7, Object(&UPDATE_CONFIG)),
            p("update_config", 0, Object(&UPDATE_CONFIG)),
            p(
                "resources",
                0,
                Object(&obj(
                    &[
                        p(
                            "limits",
                            0,
                            Object(&obj(&[p("cpus", 0, STR), p("memory", 0, STR), p("pids", 9, INT)], Forbidden)),
                        ),
                        p(
                            "reservations",
                            0,
                            Object(&obj(
                                &[p("cpus", 0, STR), p("memory", 0, STR), p("generic_resources", 5, GENERIC_RESOURCES)],
                                Forbidden,
                            )),
                        ),
                    ],
                    Forbidden,
                )),
            ),
            p(
                "restart_policy",
                0,
                Object(&obj(
                    &[
                        p("condition", 0, STR),
                        p("delay", 0, DURATION),
                        p("max_attempts", 0, INT),
                        p("window", 0, DURATION),
                    ],
                    Forbidden,
                )),
            ),
            p(
                "placement",
                0,
                Object(&obj(
                    &[
                        p("constraints", 0, STR_LIST),
                        p("preferences", 3, Array(&Object(&obj(&[p("spread", 3, STR)], Forbidden)), false)),
                        p("max_replicas_per_node", 8, INT),
                    ],
                    Forbidden,
                )),
            ),
        ],
        Forbidden,
    )
};

const STR_SET: Shape = LIST_OF_STRINGS;

/// One service.
pub(crate) static SERVICE: Obj = Obj {
    extensions: Some(v(7)),
    ..obj(
        &[
            p("deploy", 0, Object(&DEPLOY)),
            p("build", 0, BUILD),
            p("cap_add", 0, STR_SET),
            p("cap_drop", 0, STR_SET),
            p("cgroupns_mode", 9, STR),
            p("cgroup_parent", 0, STR),
            p("command", 0, COMMAND),
            p("configs", 3, FILE_REF),
            p("container_name", 0, STR),
            p(
                "credential_spec",
                3,
                Object(&obj(&[p("config", 8, STR), p("file", 3, STR), p("registry", 3, STR)], Forbidden)),
            ),
            p("depends_on", 0, LIST_OF_STRINGS),
            p("devices", 0, STR_SET),
            p("dns", 0, STRING_OR_LIST),
            p("dns_search", 0, STRING_OR_LIST),
            p("domainname", 0, STR),
            p("entrypoint", 0, COMMAND),
            p("env_file", 0, STRING_OR_LIST),
            p("environment", 0, LIST_OR_DICT),
            p("expose", 0, Array(&Scalar(STRING | NUMBER, Some(Format::Expose)), true)),
            p("external_links", 0, STR_SET),
            p("extra_hosts", 0, LIST_OR_DICT),
            p("healthcheck", 0, Object(&HEALTHCHECK)),
            p("hostname", 0, STR),
            p("image", 0, STR),
            p("init", 7, BOOL),
            p("ipc", 0, STR),
            p("isolation", 5, STR),
            p("labels", 0, LIST_OR_DICT),
            p("links", 0, STR_SET),
            p(
                "logging",
                0,
                Object(&obj(
                    &[
                        p("driver", 0, STR),
                        p(
                            "options",
                            0,
                            Object(&Obj {
                                patterns: &[(Pat::Line, Scalar(STRING | NUMBER | NULL, None))],
                                ..obj(&[], Allowed)
                            }),
                        ),
                    ],
                    Forbidden,
                )),
            ),
            p("mac_address", 0, STR),
            p("network_mode", 0, STR),
            p("networks", 0, SERVICE_NETWORKS),
            p("pid", 0, Scalar(STRING | NULL, None)),
            p("ports", 0, PORTS),
            p("privileged", 0, BOOL),
            p("read_only", 0, BOOL),
            p("restart", 0, STR),
            p("security_opt", 0, STR_SET),
            p("shm_size", 0, Scalar(NUMBER | STRING, None)),
            p("secrets", 1, FILE_REF),
            p("sysctls", 0, LIST_OR_DICT),
            p("stdin_open", 0, BOOL),
            p("stop_grace_period", 0, DURATION),
            p("stop_signal", 0, STR),
            p("tmpfs", 0, STRING_OR_LIST),
            p("tty", 0, BOOL),
            p("ulimits", 0, Object(&ULIMITS)),
            p("oom_score_adj", 13, INT),
            p("user", 0, STR),
            p("userns_mode", 0, STR),
            p("volumes", 0, SERVICE_VOLUMES),
            p("working_dir", 0, STR),
        ],
        Forbidden,
    )
};

const EXTERNAL_STRICT: Shape = Object(&Obj { also: BOOLEAN, ..obj(&[p("name", 0, STR)], Forbidden) });
const EXTERNAL_LOOSE: Shape = Object(&Obj { also: BOOLEAN, ..obj(&[p("name", 0, STR)], Allowed) });

/// A top-level network.
pub(crate) static NETWORK: Obj = Obj {
    also: NULL,
    extensions: Some(v(7)),
    ..obj(
        &[
            p("name", 5, STR),
            p("driver", 0, STR),
            p("driver_opts", 0, DRIVER_OPTS),
            p(
                "ipam",
                0,
                Object(&obj(
                    &[
                        p("driver", 0, STR),
                        p("config", 0, Array(&Object(&obj(&[p("subnet", 0, STR)], Forbidden)), false)),
                    ],
                    Forbidden,
                )),
            ),
            p("external", 0, EXTERNAL_STRICT),
            p("internal", 0, BOOL),
            p("attachable", 2, BOOL),
            p("labels", 0, LIST_OR_DICT),
        ],
        Forbidden,
    )
};

const SEGMENTS: Shape = Array(&Object(&obj(&[p("segments", 10, LIST_OR_DICT)], Allowed)), false);

const CLUSTER_SPEC: Obj = obj(
    &[
        p("group", 10, STR),
        p(
            "access_mode",
            10,
            Object(&obj(
                &[
                    p("scope", 10, STR),
                    p("sharing", 10, STR),
                    p("block_volume", 10, Object(&obj(&[], Allowed))),
                    p(
                        "mount_volume",
                        10,
                        Object(&obj(&[p("fs_type", 10, STR), p("mount_flags", 10, STR_LIST)], Allowed)),
                    ),
                ],
                Allowed,
            )),
        ),
        p(
            "accessibility_requirements",
            10,
            Object(&obj(&[p("requisite", 10, SEGMENTS), p("preferred", 10, SEGMENTS)], Allowed)),
        ),
        p("capacity_range", 10, Object(&obj(&[p("required_bytes", 10, STR), p("limit_bytes", 10, STR)], Allowed))),
        p("availability", 10, STR),
    ],
    Allowed,
);

/// A top-level volume.
pub(crate) static VOLUME: Obj = Obj {
    also: NULL,
    extensions: Some(v(7)),
    ..obj(
        &[
            p("name", 4, STR),
            p("driver", 0, STR),
            p("driver_opts", 0, DRIVER_OPTS),
            p("external", 0, EXTERNAL_STRICT),
            p("labels", 0, LIST_OR_DICT),
            p("x-cluster-spec", 10, Object(&CLUSTER_SPEC)),
        ],
        Forbidden,
    )
};

/// A top-level secret.
pub(crate) static SECRET: Obj = Obj {
    extensions: Some(v(7)),
    ..obj(
        &[
            p("name", 5, STR),
            p("file", 1, STR),
            p("external", 1, EXTERNAL_LOOSE),
            p("labels", 1, LIST_OR_DICT),
            p("driver", 8, STR),
            p("driver_opts", 8, DRIVER_OPTS),
            p("template_driver", 8, STR),
        ],
        Forbidden,
    )
};

/// A top-level config.
pub(crate) static CONFIG: Obj = Obj {
    extensions: Some(v(7)),
    ..obj(
        &[
            p("name", 5, STR),
            p("file", 3, STR),
            p("external", 3, EXTERNAL_LOOSE),
            p("labels", 3, LIST_OR_DICT),
            p("template_driver", 8, STR),
        ],
        Forbidden,
    )
};
