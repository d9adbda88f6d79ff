//! CloudFormation stacks: `plan` (a change set, described and thrown away), `apply` (a change set
//! executed, its events followed; the agent binary uploaded as soon as the discovery bucket
//! exists), `down` (buckets emptied, stack deleted, data buckets kept unless asked).

use crate::config::{AwsError, error_chain};
use crate::events::{self, Event, Failure};
use aws_sdk_cloudformation::types::{Capability, ChangeSetType, Parameter, Tag};
use aws_types::SdkConfig;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// CloudFormation's limit for a template sent inline.
pub const MAX_TEMPLATE_BODY: usize = 51_200;
/// S3 key of the berth binary the instances run as their agent.
pub const AGENT_KEY: &str = "agent/berth";
/// Output names of the template (the contract with `berth-cfn`).
pub const OUT_DISCOVERY: &str = "DiscoveryBucket";
pub const OUT_STATIC: &str = "StaticBucket";
pub const OUT_MEDIA: &str = "MediaBucket";

/// How often stack and change set states are polled.
const POLL: Duration = Duration::from_secs(2);
/// How long a change set may take to compute.
const CHANGE_SET_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a stack operation may take (an ASG that never gets healthy times out in CloudFormation
/// before this).
const STACK_TIMEOUT: Duration = Duration::from_secs(3 * 3600);

/// A stack as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackInfo {
    pub name: String,
    pub id: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
}

/// One row of a change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeRow {
    /// `Add`, `Modify`, `Remove` (also `Import`, `Dynamic`).
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    /// `True`, `False` or `Conditional` for a Modify; None otherwise.
    pub replacement: Option<String>,
    pub physical_id: Option<String>,
}

/// A computed change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangePlan {
    pub stack: String,
    /// `CREATE` (the stack does not exist yet) or `UPDATE`.
    pub change_type: String,
    /// ARN of the change set; None when there are no changes (it is deleted then).
    pub change_set: Option<String>,
    pub rows: Vec<ChangeRow>,
    /// Parameters the change set was made with.
    pub parameters: BTreeMap<String, String>,
    /// The template (to tell which resource an error is about).
    #[serde(skip)]
    pub template: String,
}

impl ChangePlan {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// What a plan is made of.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub stack: String,
    pub template: String,
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// The berth binary the instances fetch from the discovery bucket.
#[derive(Debug, Clone)]
pub struct AgentBinary {
    pub path: PathBuf,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

impl AgentBinary {
    /// The file at `path`, hashed.
    pub fn from_path(path: &Path) -> Result<AgentBinary, AwsError> {
        let mut f = std::fs::File::open(path)
            .map_err(|e| AwsError::Other(format!("reading the berth binary {}: {e}", path.display())))?;
        let mut h = Sha256::new();
        std::io::copy(&mut f, &mut h)
            .map_err(|e| AwsError::Other(format!("reading the berth binary {}: {e}", path.display())))?;
        let sha256 = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(AgentBinary { path: path.to_owned(), sha256 })
    }

    /// The running executable.
    pub fn current() -> Result<AgentBinary, AwsError> {
        let exe = std::env::current_exe().map_err(|e| AwsError::Other(format!("finding the berth binary: {e}")))?;
        AgentBinary::from_path(&exe)
    }

    /// The `AgentVersion` parameter: a prefix of the hash (changing it rolls the instances).
    pub fn version(&self) -> &str {
        &self.sha256[..16.min(self.sha256.len())]
    }
}

/// What `down` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DownReport {
    /// The stack existed (false: nothing to do).
    pub existed: bool,
    /// Objects removed from the discovery bucket before deleting the stack.
    pub discovery_objects: usize,
    /// Data buckets kept (DeletionPolicy Retain; `--delete-data` not given).
    pub kept: Vec<String>,
    /// Data buckets emptied and deleted (`--delete-data`).
    pub deleted: Vec<String>,
}

/// A stack operation that ended in failure, with the resource that failed first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackFailure {
    pub stack: String,
    /// The stack's final status (`ROLLBACK_COMPLETE`, ...).
    pub status: String,
    pub failure: Option<Failure>,
    /// What CloudFormation did afterwards.
    pub rollback: String,
}

/// The CloudFormation and S3 clients of one region.
#[derive(Debug, Clone)]
pub struct Stacks {
    cfn: aws_sdk_cloudformation::Client,
    s3: aws_sdk_s3::Client,
}

fn is_missing(e: &AwsError) -> bool {
    matches!(e, AwsError::Api { code: Some(c), message, .. } if c == "ValidationError" && message.contains("does not exist"))
}

fn no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

impl Stacks {
    pub fn new(conf: &SdkConfig) -> Stacks {
        Stacks { cfn: aws_sdk_cloudformation::Client::new(conf), s3: crate::config::s3(conf) }
    }

    /// The stack named `name`, None when there is none (deleted stacks do not count).
    pub async fn describe(&self, name: &str) -> Result<Option<StackInfo>, AwsError> {
        let out = match self.cfn.describe_stacks().stack_name(name).send().await {
            Ok(o) => o,
            Err(e) => {
                let e = AwsError::api("cloudformation:DescribeStacks", e);
                return if is_missing(&e) { Ok(None) } else { Err(e) };
            }
        };
        let Some(s) = out.stacks().first() else { return Ok(None) };
        let status = s.stack_status().map(|s| s.as_str().to_owned()).unwrap_or_default();
        if status == "DELETE_COMPLETE" {
            return Ok(None);
        }
        let mut info = StackInfo {
            name: s.stack_name().unwrap_or(name).to_owned(),
            id: s.stack_id().unwrap_or_default().to_owned(),
            status,
            status_reason: s.stack_status_reason().map(str::to_owned),
            outputs: s
                .outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value().unwrap_or_default().to_owned())))
                .collect(),
            parameters: s
                .parameters()
                .iter()
                .filter_map(|p| {
                    Some((p.parameter_key()?.to_owned(), p.parameter_value().unwrap_or_default().to_owned()))
                })
                .collect(),
        };
        if info.outputs.is_empty() && info.status.ends_with("_COMPLETE") {
            self.ref_outputs(&mut info).await?;
        }
        Ok(Some(info))
    }

    /// Outputs that are a `Ref` to a resource, read from the stack's resources. CloudFormation
    /// always reports outputs; moto reports none for a stack made or changed through a change set,
    /// and this is how berth still finds its buckets there.
    async fn ref_outputs(&self, info: &mut StackInfo) -> Result<(), AwsError> {
        let Ok(t) = self.cfn.get_template().stack_name(&info.id).send().await else { return Ok(()) };
        let Some(body) = t.template_body() else { return Ok(()) };
        let Ok(template) = serde_json::from_str::<serde_json::Value>(body) else { return Ok(()) };
        let Some(outputs) = template.get("Outputs").and_then(|o| o.as_object()) else { return Ok(()) };
        let refs: Vec<(String, String)> = outputs
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.get("Value")?.get("Ref")?.as_str()?.to_owned())))
            .collect();
        if refs.is_empty() {
            return Ok(());
        }
        let res = self
            .cfn
            .describe_stack_resources()
            .stack_name(&info.id)
            .send()
            .await
            .map_err(|e| AwsError::api("cloudformation:DescribeStackResources", e))?;
        for (key, logical) in refs {
            if let Some(p) = res
                .stack_resources()
                .iter()
                .find(|r| r.logical_resource_id() == Some(logical.as_str()))
                .and_then(|r| r.physical_resource_id())
            {
                info.outputs.insert(key, p.to_owned());
            }
        }
        Ok(())
    }

    /// Makes a change set for `req` and describes it. An empty plan (no changes) leaves nothing
    /// behind; otherwise the change set stays until [`Stacks::apply`] or [`Stacks::discard`].
    pub async fn plan(&self, req: &PlanRequest) -> Result<ChangePlan, AwsError> {
        if req.template.len() > MAX_TEMPLATE_BODY {
            return Err(AwsError::Other(format!(
                "the template is {} bytes, over CloudFormation's {MAX_TEMPLATE_BODY} for a template sent inline",
                req.template.len()
            )));
        }
        let existing = self.describe(&req.stack).await?;
        let create = match existing.as_ref().map(|s| s.status.as_str()) {
            None | Some("REVIEW_IN_PROGRESS") => true,
            Some("ROLLBACK_COMPLETE") => {
                return Err(AwsError::StackState {
                    stack: req.stack.clone(),
                    status: "ROLLBACK_COMPLETE".into(),
                    message: "its creation failed earlier and was rolled back".into(),
                });
            }
            Some(s) if !events::is_settled(s) => {
                return Err(AwsError::StackState {
                    stack: req.stack.clone(),
                    status: s.to_owned(),
                    message: "an operation is in progress".into(),
                });
            }
            Some(_) => false,
        };
        let change_type = if create { ChangeSetType::Create } else { ChangeSetType::Update };
        let name = format!(
            "berth-{}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs()
        );
        let mut call = self
            .cfn
            .create_change_set()
            .stack_name(&req.stack)
            .change_set_name(&name)
            .change_set_type(change_type.clone())
            .template_body(&req.template)
            .capabilities(Capability::CapabilityIam)
            .capabilities(Capability::CapabilityNamedIam)
            .description("berth cluster up");
        for (k, v) in &req.parameters {
            call = call.parameters(Parameter::builder().parameter_key(k).parameter_value(v).build());
        }
        for (k, v) in &req.tags {
            call = call.tags(Tag::builder().key(k).value(v).build());
        }
        let out = call.send().await.map_err(|e| AwsError::api("cloudformation:CreateChangeSet", e))?;
        let arn = out.id().unwrap_or(&name).to_owned();
        let mut plan = ChangePlan {
            stack: req.stack.clone(),
            change_type: change_type.as_str().to_owned(),
            change_set: Some(arn.clone()),
            rows: Vec::new(),
            parameters: req.parameters.clone(),
            template: req.template.clone(),
        };
        let start = Instant::now();
        loop {
            let d = self
                .cfn
                .describe_change_set()
                .change_set_name(&arn)
                .stack_name(&req.stack)
                .send()
                .await
                .map_err(|e| AwsError::api("cloudformation:DescribeChangeSet", e))?;
            let status = d.status().map(|s| s.as_str().to_owned()).unwrap_or_default();
            match status.as_str() {
                "CREATE_COMPLETE" => break,
                "FAILED" => {
                    let reason = d.status_reason().unwrap_or_default().to_owned();
                    if no_changes(&reason) {
                        self.discard(&plan).await?;
                        plan.change_set = None;
                        return Ok(plan);
                    }
                    let _ = self.discard(&plan).await;
                    return Err(AwsError::Api { op: "cloudformation:CreateChangeSet", code: None, message: reason });
                }
                _ if start.elapsed() > CHANGE_SET_TIMEOUT => {
                    return Err(AwsError::Other(format!("change set {name} not ready after {CHANGE_SET_TIMEOUT:?}")));
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
        let mut token: Option<String> = None;
        loop {
            let d = self
                .cfn
                .describe_change_set()
                .change_set_name(&arn)
                .stack_name(&req.stack)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| AwsError::api("cloudformation:DescribeChangeSet", e))?;
            for c in d.changes() {
                let Some(rc) = c.resource_change() else { continue };
                plan.rows.push(ChangeRow {
                    action: rc.action().map(|a| a.as_str().to_owned()).unwrap_or_default(),
                    logical_id: rc.logical_resource_id().unwrap_or_default().to_owned(),
                    resource_type: rc.resource_type().unwrap_or_default().to_owned(),
                    replacement: rc.replacement().map(|r| r.as_str().to_owned()),
                    physical_id: rc.physical_resource_id().map(str::to_owned),
                });
            }
            token = d.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(plan)
    }

    /// Deletes the change set of `plan`, and the empty stack a CREATE change set made.
    pub async fn discard(&self, plan: &ChangePlan) -> Result<(), AwsError> {
        let Some(arn) = &plan.change_set else { return Ok(()) };
        self.cfn
            .delete_change_set()
            .change_set_name(arn)
            .stack_name(&plan.stack)
            .send()
            .await
            .map_err(|e| AwsError::api("cloudformation:DeleteChangeSet", e))?;
        if plan.change_type == "CREATE"
            && let Some(s) = self.describe(&plan.stack).await?
            && s.status == "REVIEW_IN_PROGRESS"
        {
            self.cfn
                .delete_stack()
                .stack_name(&s.id)
                .send()
                .await
                .map_err(|e| AwsError::api("cloudformation:DeleteStack", e))?;
        }
        Ok(())
    }

    /// Deletes a stack whose creation failed (ROLLBACK_COMPLETE: it holds no resources) so that
    /// it can be created again.
    pub async fn delete_failed(&self, name: &str, progress: &mut (dyn FnMut(String) + Send)) -> Result<(), AwsError> {
        progress(format!("deleting stack {name}: its creation failed earlier (ROLLBACK_COMPLETE)"));
        self.delete_and_wait(name, progress).await
    }

    async fn delete_and_wait(&self, name: &str, progress: &mut (dyn FnMut(String) + Send)) -> Result<(), AwsError> {
        let Some(info) = self.describe(name).await? else { return Ok(()) };
        let seen = self.latest_event_id(&info.id).await?;
        self.cfn
            .delete_stack()
            .stack_name(&info.id)
            .send()
            .await
            .map_err(|e| AwsError::api("cloudformation:DeleteStack", e))?;
        let end = self.follow(&info, seen, progress, None).await?;
        match end {
            None => Ok(()),
            Some(s) if s.status == "DELETE_COMPLETE" => Ok(()),
            Some(s) => Err(self.failure(&s, "").await),
        }
    }

    /// The newest event's ID, so that following shows only what comes after.
    async fn latest_event_id(&self, stack_id: &str) -> Result<Option<String>, AwsError> {
        let out = self
            .cfn
            .describe_stack_events()
            .stack_name(stack_id)
            .send()
            .await
            .map_err(|e| AwsError::api("cloudformation:DescribeStackEvents", e))?;
        Ok(out.stack_events().first().and_then(|e| e.event_id()).map(str::to_owned))
    }

    /// Events newer than `after`, newest first.
    async fn events_since(&self, stack_id: &str, after: Option<&str>) -> Result<Vec<Event>, AwsError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        'pages: loop {
            let page = self
                .cfn
                .describe_stack_events()
                .stack_name(stack_id)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| AwsError::api("cloudformation:DescribeStackEvents", e))?;
            for e in page.stack_events() {
                let id = e.event_id().unwrap_or_default();
                if Some(id) == after {
                    break 'pages;
                }
                out.push(Event {
                    id: id.to_owned(),
                    logical_id: e.logical_resource_id().unwrap_or_default().to_owned(),
                    resource_type: e.resource_type().unwrap_or_default().to_owned(),
                    status: e.resource_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    reason: e.resource_status_reason().map(str::to_owned),
                });
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Follows a stack until it settles, reporting each new event; uploads the agent binary as
    /// soon as the discovery bucket exists. Returns the settled stack (None: it is gone).
    async fn follow(
        &self,
        start: &StackInfo,
        mut seen: Option<String>,
        progress: &mut (dyn FnMut(String) + Send),
        mut agent: Option<&AgentBinary>,
    ) -> Result<Option<StackInfo>, AwsError> {
        let began = Instant::now();
        loop {
            let new = self.events_since(&start.id, seen.as_deref()).await?;
            if let Some(first) = new.first() {
                seen = Some(first.id.clone());
            }
            for e in new.iter().rev() {
                progress(e.line());
            }
            if let Some(a) = agent
                && let Some(bucket) = self.discovery_bucket(&start.id).await?
            {
                self.upload_agent(&bucket, a, progress).await?;
                agent = None;
            }
            // By ID: a deleted stack is still described by its ID, as DELETE_COMPLETE.
            let now = match self.cfn.describe_stacks().stack_name(&start.id).send().await {
                Ok(o) => {
                    o.stacks().first().map(|s| s.stack_status().map(|s| s.as_str().to_owned()).unwrap_or_default())
                }
                Err(e) => {
                    let e = AwsError::api("cloudformation:DescribeStacks", e);
                    if is_missing(&e) { None } else { return Err(e) }
                }
            };
            match now {
                None => return Ok(None),
                Some(s) if events::is_settled(&s) && s != "REVIEW_IN_PROGRESS" => {
                    let info = if s == "DELETE_COMPLETE" {
                        Some(StackInfo { status: s, ..start.clone() })
                    } else {
                        self.describe(&start.name).await?
                    };
                    return Ok(info);
                }
                Some(s) if began.elapsed() > STACK_TIMEOUT => {
                    return Err(AwsError::StackState {
                        stack: start.name.clone(),
                        status: s,
                        message: format!(
                            "still in progress after {} minutes; berth stopped waiting",
                            STACK_TIMEOUT.as_secs() / 60
                        ),
                    });
                }
                Some(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// The discovery bucket's name once CloudFormation has made it.
    async fn discovery_bucket(&self, stack_id: &str) -> Result<Option<String>, AwsError> {
        let out = match self.cfn.describe_stack_resources().stack_name(stack_id).send().await {
            Ok(o) => o,
            Err(e) => {
                let e = AwsError::api("cloudformation:DescribeStackResources", e);
                return if is_missing(&e) { Ok(None) } else { Err(e) };
            }
        };
        Ok(out
            .stack_resources()
            .iter()
            .find(|r| {
                r.logical_resource_id() == Some(OUT_DISCOVERY)
                    && r.resource_status().is_some_and(|s| s.as_str().ends_with("_COMPLETE"))
            })
            .and_then(|r| r.physical_resource_id())
            .filter(|p| !p.is_empty())
            .map(str::to_owned))
    }

    /// Puts the berth binary at `agent/berth` in `bucket` unless the same one is there.
    pub async fn upload_agent(
        &self,
        bucket: &str,
        agent: &AgentBinary,
        progress: &mut (dyn FnMut(String) + Send),
    ) -> Result<(), AwsError> {
        if let Ok(h) = self.s3.head_object().bucket(bucket).key(AGENT_KEY).send().await
            && h.metadata().and_then(|m| m.get("sha256")).is_some_and(|s| *s == agent.sha256)
        {
            progress(format!("agent binary {} already in s3://{bucket}/{AGENT_KEY}", agent.version()));
            return Ok(());
        }
        let body = aws_sdk_s3::primitives::ByteStream::from_path(&agent.path)
            .await
            .map_err(|e| AwsError::Other(format!("reading {}: {}", agent.path.display(), error_chain(&e))))?;
        self.s3
            .put_object()
            .bucket(bucket)
            .key(AGENT_KEY)
            .metadata("sha256", &agent.sha256)
            .body(body)
            .send()
            .await
            .map_err(|e| AwsError::api("s3:PutObject", e))?;
        progress(format!("uploaded the agent binary {} to s3://{bucket}/{AGENT_KEY}", agent.version()));
        Ok(())
    }

    /// Executes the change set of `plan` and follows the stack until it settles.
    pub async fn apply(
        &self,
        plan: &ChangePlan,
        agent: Option<&AgentBinary>,
        progress: &mut (dyn FnMut(String) + Send),
    ) -> Result<StackInfo, AwsError> {
        let Some(arn) = &plan.change_set else {
            return self
                .describe(&plan.stack)
                .await?
                .ok_or_else(|| AwsError::Other(format!("stack {} does not exist", plan.stack)));
        };
        let before = self
            .describe(&plan.stack)
            .await?
            .ok_or_else(|| AwsError::Other(format!("stack {} vanished before its change set ran", plan.stack)))?;
        // An update: the bucket exists, the binary goes up before instances are replaced.
        let mut agent = agent;
        if let (Some(a), Some(bucket)) = (agent, before.outputs.get(OUT_DISCOVERY)) {
            self.upload_agent(bucket, a, progress).await?;
            agent = None;
        }
        let seen = self.latest_event_id(&before.id).await?;
        if let Err(e) = self.cfn.execute_change_set().change_set_name(arn).stack_name(&plan.stack).send().await {
            let e = AwsError::api("cloudformation:ExecuteChangeSet", e);
            // A resource refused while the change set starts (moto creates synchronously):
            // there is no event to read, only the error.
            let template = serde_json::from_str(&plan.template).unwrap_or_default();
            return Err(AwsError::ExecuteFailed {
                stack: plan.stack.clone(),
                resource: events::guess_resource(&template, &e.to_string()),
                kind: events::classify(&e.to_string()),
                message: e.to_string(),
            });
        }
        let end = self.follow(&before, seen.clone(), progress, agent).await?;
        match end {
            Some(s) if events::is_success(&s.status) => {
                // moto settles at once: the bucket may appear only now.
                if let (Some(a), Some(bucket)) = (agent, s.outputs.get(OUT_DISCOVERY)) {
                    self.upload_agent(bucket, a, progress).await?;
                }
                Ok(s)
            }
            Some(s) => Err(self.failure(&s, seen.as_deref().unwrap_or_default()).await),
            None => Err(AwsError::Other(format!("stack {} disappeared while it was being changed", plan.stack))),
        }
    }

    async fn failure(&self, s: &StackInfo, after: &str) -> AwsError {
        let events = self.events_since(&s.id, (!after.is_empty()).then_some(after)).await.unwrap_or_default();
        AwsError::StackFailed(Box::new(StackFailure {
            stack: s.name.clone(),
            status: s.status.clone(),
            failure: events::first_failure(&events, &s.name),
            rollback: events::rollback_note(&s.status).to_owned(),
        }))
    }

    /// Empties the discovery bucket, deletes the stack and waits; data buckets are kept unless
    /// `delete_data` (then emptied and deleted).
    pub async fn down(
        &self,
        name: &str,
        delete_data: bool,
        progress: &mut (dyn FnMut(String) + Send),
    ) -> Result<DownReport, AwsError> {
        let mut report = DownReport::default();
        let Some(info) = self.describe(name).await? else { return Ok(report) };
        report.existed = true;
        if !events::is_settled(&info.status)
            && info.status != "REVIEW_IN_PROGRESS"
            && info.status != "DELETE_IN_PROGRESS"
        {
            return Err(AwsError::StackState {
                stack: name.to_owned(),
                status: info.status,
                message: "an operation is in progress; wait for it to end".into(),
            });
        }
        if let Some(b) = info.outputs.get(OUT_DISCOVERY) {
            report.discovery_objects = self.empty_bucket(b).await?;
            progress(format!("emptied the discovery bucket {b} ({} objects)", report.discovery_objects));
        }
        self.delete_and_wait(name, progress).await?;
        progress(format!("stack {name} deleted"));
        for key in [OUT_STATIC, OUT_MEDIA] {
            let Some(b) = info.outputs.get(key) else { continue };
            if delete_data {
                let n = self.empty_bucket(b).await?;
                match self.s3.delete_bucket().bucket(b).send().await {
                    Ok(_) => {}
                    Err(e) => {
                        let e = AwsError::api("s3:DeleteBucket", e);
                        if e.code() != Some("NoSuchBucket") {
                            return Err(e);
                        }
                    }
                }
                progress(format!("deleted the data bucket {b} ({n} objects)"));
                report.deleted.push(b.clone());
            } else {
                report.kept.push(b.clone());
            }
        }
        Ok(report)
    }

    /// Deletes every object version and delete marker of `bucket`; a missing bucket is empty.
    pub async fn empty_bucket(&self, bucket: &str) -> Result<usize, AwsError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let mut n = 0;
        loop {
            let out = match self.s3.list_object_versions().bucket(bucket).send().await {
                Ok(o) => o,
                Err(e) => {
                    let e = AwsError::api("s3:ListObjectVersions", e);
                    return if e.code() == Some("NoSuchBucket") { Ok(n) } else { Err(e) };
                }
            };
            let mut ids = Vec::new();
            for v in out.versions() {
                if let Some(k) = v.key() {
                    ids.push((k.to_owned(), v.version_id().map(str::to_owned)));
                }
            }
            for m in out.delete_markers() {
                if let Some(k) = m.key() {
                    ids.push((k.to_owned(), m.version_id().map(str::to_owned)));
                }
            }
            if ids.is_empty() {
                return Ok(n);
            }
            for chunk in ids.chunks(1000) {
                let objects = chunk
                    .iter()
                    .map(|(k, v)| ObjectIdentifier::builder().key(k).set_version_id(v.clone()).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| AwsError::Other(format!("s3:DeleteObjects: {e}")))?;
                let del = Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()
                    .map_err(|e| AwsError::Other(format!("s3:DeleteObjects: {e}")))?;
                self.s3
                    .delete_objects()
                    .bucket(bucket)
                    .delete(del)
                    .send()
                    .await
                    .map_err(|e| AwsError::api("s3:DeleteObjects", e))?;
                n += chunk.len();
            }
        }
    }
}
