//! What a node function should look like, and how that differs from what
//! Lambda reports.
//!
//! This module is pure: [`FunctionSpec`] is the desired state built from the
//! deploy settings, [`Observed`] is the part of Lambda's
//! `FunctionConfiguration` we manage, and [`diff`] says which of the two
//! update calls (code, configuration) are needed. Keeping the comparison here,
//! away from the SDK calls, is what lets redeploys be tested as no-ops
//! without a Lambda API.

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_lambda::types::{self as lambda, FunctionConfiguration};

/// The runtime of every node function: an OS-only runtime whose entry point
/// is the `bootstrap` executable in the package (the node is a
/// `lambda_runtime` binary).
pub const RUNTIME: &str = "provided.al2023";

/// The handler: ignored by OS-only runtimes, but Lambda reports it, so it is
/// set to the conventional name to keep the comparison stable.
pub const HANDLER: &str = "bootstrap";

/// The instruction set a function runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Architecture {
    #[default]
    #[value(name = "x86_64")]
    X86_64,
    #[value(name = "arm64")]
    Arm64,
}

impl Architecture {
    /// Lambda's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// The SDK's value.
    pub fn to_lambda(self) -> lambda::Architecture {
        match self {
            Architecture::X86_64 => lambda::Architecture::X8664,
            Architecture::Arm64 => lambda::Architecture::Arm64,
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A VPC attachment; both lists empty means "no VPC".
///
/// The lists are kept sorted and deduplicated: Lambda does not promise to
/// report them in the order they were given, and the order means nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vpc {
    subnet_ids: Vec<String>,
    security_group_ids: Vec<String>,
}

impl Vpc {
    /// A VPC attachment from subnet and security-group ids in any order.
    pub fn new(
        subnet_ids: impl IntoIterator<Item = String>,
        security_group_ids: impl IntoIterator<Item = String>,
    ) -> Self {
        let normalise = |ids: &mut Vec<String>| {
            ids.retain(|id| !id.is_empty());
            ids.sort();
            ids.dedup();
        };
        let mut vpc = Vpc {
            subnet_ids: subnet_ids.into_iter().collect(),
            security_group_ids: security_group_ids.into_iter().collect(),
        };
        normalise(&mut vpc.subnet_ids);
        normalise(&mut vpc.security_group_ids);
        vpc
    }

    /// True if the function is attached to no VPC.
    pub fn is_none(&self) -> bool {
        self.subnet_ids.is_empty() && self.security_group_ids.is_empty()
    }

    pub fn subnet_ids(&self) -> &[String] {
        &self.subnet_ids
    }

    pub fn security_group_ids(&self) -> &[String] {
        &self.security_group_ids
    }

    /// The SDK's value. An empty configuration is what detaches a function
    /// from its VPC, so "no VPC" is sent explicitly too.
    pub fn to_lambda(&self) -> lambda::VpcConfig {
        lambda::VpcConfig::builder()
            .set_subnet_ids(Some(self.subnet_ids.clone()))
            .set_security_group_ids(Some(self.security_group_ids.clone()))
            .build()
    }
}

/// The desired state of one node function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    pub name: String,
    pub role: String,
    pub memory_mb: u32,
    pub timeout_secs: u32,
    pub architecture: Architecture,
    pub environment: BTreeMap<String, String>,
    pub vpc: Vpc,
    /// SHA-256 of the deployment package, base64, as Lambda's `CodeSha256`.
    pub code_sha256: String,
}

/// The managed part of a function's configuration as Lambda reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub role: Option<String>,
    pub memory_mb: Option<i32>,
    pub timeout_secs: Option<i32>,
    /// Empty when Lambda reports none (functions created before
    /// architectures existed run on x86_64).
    pub architectures: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub vpc: Vpc,
    pub code_sha256: Option<String>,
}

impl Observed {
    /// Extracts the managed settings from Lambda's configuration.
    pub fn from_lambda(config: &FunctionConfiguration) -> Self {
        Observed {
            runtime: config.runtime().map(|runtime| runtime.as_str().to_string()),
            handler: config.handler().map(str::to_string),
            role: config.role().map(str::to_string),
            memory_mb: config.memory_size(),
            timeout_secs: config.timeout(),
            architectures: config
                .architectures()
                .iter()
                .map(|arch| arch.as_str().to_string())
                .collect(),
            environment: config
                .environment()
                .and_then(|env| env.variables())
                .map(|vars| {
                    vars.iter()
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            vpc: config
                .vpc_config()
                .map(|vpc| {
                    Vpc::new(
                        vpc.subnet_ids().iter().cloned(),
                        vpc.security_group_ids().iter().cloned(),
                    )
                })
                .unwrap_or_default(),
            code_sha256: config.code_sha256().map(str::to_string),
        }
    }

    /// The architecture the function runs on (Lambda's default if unreported).
    fn architecture(&self) -> &str {
        match self.architectures.as_slice() {
            [] => Architecture::X86_64.as_str(),
            [arch, ..] => arch,
        }
    }
}

/// A configuration setting that differs from the desired one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Setting {
    Runtime,
    Handler,
    Role,
    Memory,
    Timeout,
    Environment,
    Vpc,
}

impl Setting {
    pub fn as_str(self) -> &'static str {
        match self {
            Setting::Runtime => "runtime",
            Setting::Handler => "handler",
            Setting::Role => "role",
            Setting::Memory => "memory",
            Setting::Timeout => "timeout",
            Setting::Environment => "environment",
            Setting::Vpc => "vpc",
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What must change to turn the observed function into the desired one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The package or the architecture differs: `UpdateFunctionCode`
    /// (the architecture can only be changed together with the code).
    pub code: bool,
    /// Settings for `UpdateFunctionConfiguration`, in a fixed order.
    pub configuration: Vec<Setting>,
}

impl Changes {
    /// True if the function already is as desired.
    pub fn is_empty(&self) -> bool {
        !self.code && self.configuration.is_empty()
    }
}

/// Compares the desired function with what Lambda reports.
pub fn diff(desired: &FunctionSpec, observed: &Observed) -> Changes {
    let code = observed.code_sha256.as_deref() != Some(desired.code_sha256.as_str())
        || observed.architecture() != desired.architecture.as_str();
    let mut configuration = Vec::new();
    if observed.runtime.as_deref() != Some(RUNTIME) {
        configuration.push(Setting::Runtime);
    }
    if observed.handler.as_deref() != Some(HANDLER) {
        configuration.push(Setting::Handler);
    }
    if observed.role.as_deref() != Some(desired.role.as_str()) {
        configuration.push(Setting::Role);
    }
    if observed.memory_mb != i32::try_from(desired.memory_mb).ok() {
        configuration.push(Setting::Memory);
    }
    if observed.timeout_secs != i32::try_from(desired.timeout_secs).ok() {
        configuration.push(Setting::Timeout);
    }
    if observed.environment != desired.environment {
        configuration.push(Setting::Environment);
    }
    if observed.vpc != desired.vpc {
        configuration.push(Setting::Vpc);
    }
    Changes {
        code,
        configuration,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::types::{EnvironmentResponse, Runtime, VpcConfigResponse};

    fn spec() -> FunctionSpec {
        FunctionSpec {
            name: "infinicache-node-0".into(),
            role: "arn:aws:iam::000000000000:role/infinicache-node".into(),
            memory_mb: 1024,
            timeout_secs: 900,
            architecture: Architecture::X86_64,
            environment: [("INFINICACHE_RESERVED_MB".to_string(), "32".to_string())].into(),
            vpc: Vpc::default(),
            code_sha256: "c2hhMjU2".into(),
        }
    }

    /// What Lambda reports for a function created from `spec()`.
    fn reported() -> FunctionConfiguration {
        reported_builder().build()
    }

    /// [`reported`], before any field is replaced (setters replace).
    fn reported_builder() -> lambda::builders::FunctionConfigurationBuilder {
        FunctionConfiguration::builder()
            .function_name("infinicache-node-0")
            .runtime(Runtime::Providedal2023)
            .handler(HANDLER)
            .role("arn:aws:iam::000000000000:role/infinicache-node")
            .memory_size(1024)
            .timeout(900)
            .architectures(lambda::Architecture::X8664)
            .environment(
                EnvironmentResponse::builder()
                    .variables("INFINICACHE_RESERVED_MB", "32")
                    .build(),
            )
            // AWS reports an empty VPC configuration for functions outside a VPC.
            .vpc_config(VpcConfigResponse::builder().vpc_id("").build())
            .code_sha256("c2hhMjU2")
            .last_modified("2026-01-01T00:00:00.000+0000")
    }

    #[test]
    fn a_function_as_deployed_is_unchanged() {
        let changes = diff(&spec(), &Observed::from_lambda(&reported()));
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn missing_optional_blocks_mean_empty() {
        // No environment, no VPC block, no architectures: Lambda's defaults.
        let config = reported_builder()
            .set_environment(None)
            .set_vpc_config(None)
            .set_architectures(None)
            .build();
        let desired = FunctionSpec {
            environment: BTreeMap::new(),
            ..spec()
        };
        assert!(diff(&desired, &Observed::from_lambda(&config)).is_empty());
    }

    #[test]
    fn new_code_or_architecture_needs_a_code_update() {
        let observed = Observed::from_lambda(&reported());
        let new_code = FunctionSpec {
            code_sha256: "b3RoZXI=".into(),
            ..spec()
        };
        assert_eq!(
            diff(&new_code, &observed),
            Changes {
                code: true,
                configuration: vec![]
            }
        );
        let arm = FunctionSpec {
            architecture: Architecture::Arm64,
            ..spec()
        };
        assert_eq!(
            diff(&arm, &observed),
            Changes {
                code: true,
                configuration: vec![]
            }
        );
    }

    #[test]
    fn each_setting_is_detected() {
        let observed = Observed::from_lambda(&reported());
        let cases: Vec<(FunctionSpec, Setting)> = vec![
            (
                FunctionSpec {
                    memory_mb: 2048,
                    ..spec()
                },
                Setting::Memory,
            ),
            (
                FunctionSpec {
                    timeout_secs: 60,
                    ..spec()
                },
                Setting::Timeout,
            ),
            (
                FunctionSpec {
                    role: "arn:aws:iam::000000000000:role/other".into(),
                    ..spec()
                },
                Setting::Role,
            ),
            (
                FunctionSpec {
                    environment: [
                        ("INFINICACHE_RESERVED_MB".to_string(), "32".to_string()),
                        ("INFINICACHE_LOG".to_string(), "debug".to_string()),
                    ]
                    .into(),
                    ..spec()
                },
                Setting::Environment,
            ),
            (
                FunctionSpec {
                    vpc: Vpc::new(["subnet-1".to_string()], ["sg-1".to_string()]),
                    ..spec()
                },
                Setting::Vpc,
            ),
        ];
        for (desired, setting) in cases {
            assert_eq!(
                diff(&desired, &observed),
                Changes {
                    code: false,
                    configuration: vec![setting]
                }
            );
        }
    }

    #[test]
    fn runtime_and_handler_are_managed() {
        let config = reported_builder()
            .runtime(Runtime::Providedal2)
            .handler("main")
            .build();
        assert_eq!(
            diff(&spec(), &Observed::from_lambda(&config)).configuration,
            vec![Setting::Runtime, Setting::Handler]
        );
    }

    #[test]
    fn vpc_order_does_not_matter_but_detaching_does() {
        let attached = reported_builder()
            .vpc_config(
                VpcConfigResponse::builder()
                    .subnet_ids("subnet-b")
                    .subnet_ids("subnet-a")
                    .security_group_ids("sg-1")
                    .vpc_id("vpc-1")
                    .build(),
            )
            .build();
        let observed = Observed::from_lambda(&attached);
        let same = FunctionSpec {
            vpc: Vpc::new(
                ["subnet-a".to_string(), "subnet-b".to_string()],
                ["sg-1".to_string()],
            ),
            ..spec()
        };
        assert!(diff(&same, &observed).is_empty());
        // Desired: no VPC; the function must be detached.
        assert_eq!(diff(&spec(), &observed).configuration, vec![Setting::Vpc]);
        assert!(spec().vpc.is_none());
        let detach = spec().vpc.to_lambda();
        assert_eq!(detach.subnet_ids(), &[] as &[String]);
        assert_eq!(detach.security_group_ids(), &[] as &[String]);
    }
}
