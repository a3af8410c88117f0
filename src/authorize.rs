//! `authorize`: the tower layer that runs the policy engine for each request.
//!
//! Reads what earlier steps inserted: [`RouteMatch`] (the config snapshot: compiled
//! policies, the route's resource), `Arc<Principal>` (absent on `auth = "none"` routes,
//! which are passed through untouched), [`ClientIp`] (fallback: the TCP peer), and the
//! [`DecisionId`]. It loads the current policy state once, evaluates, counts
//! `accessgate_policy_evaluations_total`, and either calls the inner service or answers with
//! `respond::reject`. Either way the response carries an `Arc<AuthzOutcome>` so the
//! decision log (which sees only the response) can list the policies.
//!
//! State older than `max_staleness` (or none yet) gives 503 + `Retry-After`; with
//! `fail_open = true` the request is evaluated without state-dependent checks instead,
//! counted in `accessgate_state_fail_open_total` and logged (rate-limited) at warn.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use arc_swap::ArcSwapOption;
use http::{Request, Response};
use prometheus::IntCounter;
use tower::{Layer, Service};

use crate::authn::Principal;
use crate::body::Body;
use crate::config::AuthMode;
use crate::ids::DecisionId;
use crate::ops::metrics::Metrics;
use crate::policy::{Action, Decision, EvalInput, Evaluation, GraphResult, PolicySet, evaluate};
use crate::respond::{Denial, Rejection, StepUp, push_json_str, reject};
use crate::route::RouteMatch;
use crate::state::StateStore;
use crate::timing::{Phase, Phases};
use crate::transport::conn::{ClientIp, ConnInfo};

/// What `authorize` decided, in the response extensions (as `Arc<AuthzOutcome>`).
#[derive(Debug)]
pub struct AuthzOutcome {
    /// The policy set the request was evaluated against (names are read from it).
    pub policies: Arc<PolicySet>,
    pub evaluation: Evaluation,
}

impl AuthzOutcome {
    /// `(name, mode, result, reason)` of each policy that applied (report-only included).
    pub fn applied(&self) -> impl Iterator<Item = (&str, &'static str, GraphResult, &'static str)> {
        self.evaluation
            .results
            .iter()
            .filter(|r| r.result.applied())
            .filter_map(|r| {
                let p = self.policies.policy(r.policy)?;
                Some((&*p.name, p.mode.as_str(), r.result, r.reason))
            })
    }
}

/// Append the policy results of this request (if `authorize` recorded any in the response
/// extensions) to a decision log line, as `,"policies":[...]` (only policies that applied),
/// plus `,"state_fail_open":true` when state checks were skipped.
pub fn write_policy_results(extensions: &http::Extensions, out: &mut String) {
    if let Some(o) = extensions.get::<Arc<AuthzOutcome>>() {
        write_outcome(o, out);
    }
}

/// [`write_policy_results`] for an outcome already taken from the extensions.
pub fn write_outcome(o: &AuthzOutcome, out: &mut String) {
    out.push_str(",\"policies\":[");
    for (i, (name, mode, result, reason)) in o.applied().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        push_json_str(out, name);
        let _ = write!(
            out,
            ",\"mode\":\"{mode}\",\"result\":\"{}\",\"reason\":\"{reason}\"}}",
            result.as_str()
        );
    }
    out.push(']');
    if o.evaluation.fail_open {
        out.push_str(",\"state_fail_open\":true");
    }
}

/// The response for a denial (`None` when allowed): how the policy engine's decision
/// becomes a [`Rejection`]. Here and not in `policy` so the engine stays free of HTTP
/// types; What If calls it too, so the tool shows exactly what the gateway would send.
pub fn rejection(
    evaluation: &Evaluation,
    set: &PolicySet,
    principal: &Principal,
) -> Option<Rejection> {
    let Decision::Deny { failure, policy } = &evaluation.decision else {
        return None;
    };
    let issuer = set.issuer(principal.issuer_index);
    let denial = match &failure.action {
        Action::Block => Denial::Block,
        Action::Remediate {
            deadline,
            retry_after,
        } => Denial::Remediate {
            deadline: *deadline,
            retry_after: *retry_after,
        },
        Action::Reauthenticate { nbf } => Denial::Reauthenticate {
            nbf: *nbf,
            cae_capable: principal.cae_capable,
            authorization_uri: issuer.authorization_uri,
        },
        Action::StepUp {
            auth_context,
            max_age,
        } => Denial::StepUp(StepUp {
            auth_context: auth_context.as_deref().map(str::to_owned),
            style: issuer.style,
            authorization_uri: issuer.authorization_uri,
            max_age: *max_age,
        }),
    };
    Some(Rejection::Denied {
        denial,
        reason: failure.reason,
        policy: policy.and_then(|i| set.policy(i)).map(|p| p.name.clone()),
    })
}

/// Counter handles for one policy set: `[policy][GraphResult]`, resolved once so a request
/// increments atomics without hashing labels.
struct PolicyCounters {
    set_id: u64,
    handles: Vec<[Option<IntCounter>; 7]>,
}

fn result_slot(r: GraphResult) -> usize {
    GraphResult::ALL.iter().position(|x| *x == r).unwrap_or(0)
}

impl PolicyCounters {
    fn new(set: &PolicySet, m: &Metrics) -> Self {
        let handles = set
            .policies()
            .iter()
            .map(|p| {
                let mode = p.mode.as_str();
                let mut h: [Option<IntCounter>; 7] = Default::default();
                for r in GraphResult::ALL {
                    // Only the results this mode can produce, so /metrics shows each policy's
                    // series at zero without nonsense combinations.
                    let possible = match p.mode {
                        crate::config::PolicyMode::Enabled => matches!(
                            r,
                            GraphResult::Success | GraphResult::Failure | GraphResult::NotApplied
                        ),
                        crate::config::PolicyMode::ReportOnly => matches!(
                            r,
                            GraphResult::ReportOnlySuccess
                                | GraphResult::ReportOnlyFailure
                                | GraphResult::ReportOnlyNotApplied
                        ),
                        crate::config::PolicyMode::Disabled => r == GraphResult::NotEnabled,
                    };
                    if possible {
                        h[result_slot(r)] = Some(m.policy_evaluations_total.with_label_values(&[
                            &p.name,
                            mode,
                            r.as_str(),
                        ]));
                    }
                }
                h
            })
            .collect();
        Self {
            set_id: set.id(),
            handles,
        }
    }
}

struct Shared {
    store: Arc<StateStore>,
    metrics: Metrics,
    counters: ArcSwapOption<PolicyCounters>,
}

impl Shared {
    fn count(&self, set: &PolicySet, ev: &Evaluation) {
        let cached = self.counters.load();
        let fresh;
        let counters = match cached.as_deref() {
            Some(c) if c.set_id == set.id() => c,
            _ => {
                fresh = Arc::new(PolicyCounters::new(set, &self.metrics));
                // Set ids grow with each reload: keep the newest, so requests still finishing
                // on an older config do not evict it.
                if cached.as_deref().is_none_or(|c| c.set_id < set.id()) {
                    self.counters.store(Some(fresh.clone()));
                }
                &fresh
            }
        };
        for r in &ev.results {
            if let Some(Some(c)) = counters
                .handles
                .get(r.policy as usize)
                .and_then(|h| h.get(result_slot(r.result)))
            {
                c.inc();
            }
        }
    }
}

/// Adds the `authorize` step.
#[derive(Clone)]
pub struct AuthorizeLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AuthorizeLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizeLayer").finish_non_exhaustive()
    }
}

impl AuthorizeLayer {
    pub fn new(store: Arc<StateStore>, metrics: Metrics) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                metrics,
                counters: ArcSwapOption::empty(),
            }),
        }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The `authorize` service (see the module doc).
#[derive(Clone)]
pub struct Authorize<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Authorize<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorize")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// Boxed like the other steps' futures: the allow path awaits the inner service.
pub use crate::body::ResponseFuture;

fn ready(resp: Response<Body>) -> ResponseFuture {
    Box::pin(std::future::ready(Ok(resp)))
}

fn denied_without_policy(reason: &'static str) -> Rejection {
    Rejection::Denied {
        denial: Denial::Block,
        reason,
        policy: None,
    }
}

impl<S, B> Service<Request<B>> for Authorize<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        // Use the service that was driven to readiness; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let ext = req.extensions();
        let decision_id = DecisionId::of(ext);
        let Some(rm) = ext.get::<RouteMatch>() else {
            tracing::error!("authorize: request without RouteMatch");
            return ready(reject(&Rejection::NotFound, decision_id));
        };
        let Some(route) = rm.snapshot.routes.get(rm.index) else {
            tracing::error!("authorize: RouteMatch index out of range");
            return ready(reject(&Rejection::NotFound, decision_id));
        };
        let Some(principal) = ext.get::<Arc<Principal>>() else {
            return match route.config.auth {
                AuthMode::None => Box::pin(inner.call(req)),
                // `authenticate` always inserts a Principal on these routes; without one,
                // refuse rather than let an unauthenticated request through.
                AuthMode::Required => {
                    tracing::error!("authorize: authenticated route without a Principal");
                    ready(reject(&Rejection::MissingToken, decision_id))
                }
            };
        };
        let client_ip = match (ext.get::<ClientIp>(), ext.get::<ConnInfo>()) {
            (Some(ip), _) => ip.0,
            (None, Some(c)) => c.peer.ip(),
            (None, None) => {
                tracing::error!("authorize: no client address");
                return ready(reject(
                    &denied_without_policy("client_ip_unknown"),
                    decision_id,
                ));
            }
        };

        let shared = &self.shared;
        let started = Instant::now();
        let now = crate::clock::now();
        let now_s = crate::clock::unix_secs(now);
        // One load per request: this snapshot is the state the request is decided on,
        // whatever a refresh swaps in meanwhile.
        let snap = shared.store.current();
        let state = match &snap {
            Some(s) if shared.store.is_fresh(now) => Some(&s.state),
            _ if shared.store.freshness().fail_open => {
                shared.metrics.state_fail_open_total.inc();
                shared.store.warn_fail_open(now_s);
                None
            }
            _ => {
                let retry_after = shared.store.retry_after();
                let mut resp = reject(&Rejection::StateUnavailable { retry_after }, decision_id);
                Phases::record(resp.extensions_mut(), Phase::Authz, started.elapsed());
                return ready(resp);
            }
        };
        let policies = &rm.snapshot.policies;
        let evaluation = evaluate(
            policies,
            state,
            &EvalInput {
                resource: &route.config.resource,
                principal,
                client_ip,
                now: now_s,
            },
        );
        shared.count(policies, &evaluation);
        let rejection = rejection(&evaluation, policies, principal);
        let outcome = Arc::new(AuthzOutcome {
            policies: Arc::clone(policies),
            evaluation,
        });
        let took = started.elapsed();
        match rejection {
            Some(r) => {
                let mut resp = reject(&r, decision_id);
                resp.extensions_mut().insert(outcome);
                Phases::record(resp.extensions_mut(), Phase::Authz, took);
                ready(resp)
            }
            None => Box::pin(async move {
                let mut resp = inner.call(req).await?;
                resp.extensions_mut().insert(outcome);
                Phases::record(resp.extensions_mut(), Phase::Authz, took);
                Ok(resp)
            }),
        }
    }
}

#[cfg(test)]
#[path = "authorize_tests.rs"]
mod tests;
