//! `Error::find_in`: a token failure is found however other middleware wrapped it
//! (reqwest-retry outside and inside the auth middleware, the caller's own errors), and
//! in the Tower layer's `BoxError`. Paused time: the requests never leave the process, since the
//! token request fails first, and reqwest-retry's back-off sleeps on Tokio's clock.

use std::fmt;

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{
    Credentials, Error, ErrorKind, IdmAuthLayer, IdmAuthMiddleware, TokenManager, TokenScope,
};
use bytes::Bytes;
use http_body_util::Full;
use reqwest_middleware::ClientBuilder;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::{RetryTransientMiddleware, Retryable, RetryableStrategy};
use tower::{ServiceBuilder, ServiceExt};

const URL: &str = "https://api.bodhi.example/stores";

fn scope() -> TokenScope {
    TokenScope::origins(["https://api.bodhi.example"]).unwrap()
}

/// A manager whose password the fake IDM refuses.
fn refused(idm: &FakeIdm) -> TokenManager {
    TokenManager::builder(Credentials::new("user", "wrong"))
        .fake_idm(idm)
        .build()
        .unwrap()
}

fn retry() -> RetryTransientMiddleware<ExponentialBackoff> {
    RetryTransientMiddleware::new_with_policy(
        ExponentialBackoff::builder().build_with_max_retries(2),
    )
}

fn assert_refused(found: Option<&Error>) {
    let found = found.expect("a bodhi_auth::Error in the chain");
    assert_eq!(found.kind(), ErrorKind::InvalidCredentials);
}

#[tokio::test(start_paused = true)]
async fn a_token_failure_is_found_through_reqwest_retry_outside_the_auth_middleware() {
    let idm = FakeIdm::new();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(retry()) // outermost
        .with(IdmAuthMiddleware::with_manager(refused(&idm), scope()))
        .build();
    let error = client.get(URL).send().await.unwrap_err();
    // reqwest-retry wraps it as `Middleware(RetryError::Error(Middleware(our error)))`,
    // transparent all the way: walking `source()` alone never meets it. (If a later
    // reqwest-retry makes it reachable, this fails, and the feature can go.)
    assert!(
        std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
            .all(|e| !e.is::<Error>()),
        "the plain source() chain hides it: {error:?}"
    );
    assert_refused(Error::find_in(&error));
    assert_eq!(idm.token_requests(), 1, "a refused password is not retried");
}

#[tokio::test(start_paused = true)]
async fn a_token_failure_is_found_with_reqwest_retry_inside_the_auth_middleware() {
    let idm = FakeIdm::new();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(IdmAuthMiddleware::with_manager(refused(&idm), scope()))
        .with(retry())
        .build();
    let error = client.get(URL).send().await.unwrap_err();
    assert_refused(Error::find_in(&error));
}

/// Retries every failure, so a token failure ends as `RetryError::WithRetries`.
struct RetryEverything;

impl RetryableStrategy for RetryEverything {
    fn handle(
        &self,
        result: &Result<reqwest::Response, reqwest_middleware::Error>,
    ) -> Option<Retryable> {
        result.as_ref().err().map(|_| Retryable::Transient)
    }
}

#[tokio::test(start_paused = true)]
async fn a_token_failure_is_found_after_reqwest_retry_retried_it() {
    let idm = FakeIdm::new();
    let policy = ExponentialBackoff::builder().build_with_max_retries(2);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(RetryTransientMiddleware::new_with_policy_and_strategy(
            policy,
            RetryEverything,
        ))
        .with(IdmAuthMiddleware::with_manager(refused(&idm), scope()))
        .build();
    let error = client.get(URL).send().await.unwrap_err();
    assert!(error.to_string().contains("after 2 retries"), "{error}");
    assert_refused(Error::find_in(&error));
    assert_eq!(idm.token_requests(), 1, "the cooldown answers the retries");
}

#[tokio::test(start_paused = true)]
async fn a_token_failure_is_found_in_the_tower_layers_box_error() {
    let idm = FakeIdm::new();
    let service = ServiceBuilder::new()
        .layer(IdmAuthLayer::with_manager(refused(&idm), scope()))
        .service(FakeApi::new(&idm));
    let request = http::Request::get(URL)
        .body(Full::<Bytes>::default())
        .unwrap();
    let error = service.oneshot(request).await.unwrap_err();
    assert_refused(Error::find_in(&*error));
}

/// An error of the caller's own that keeps its cause as `source()`.
#[derive(Debug)]
struct Loading(Box<dyn std::error::Error + Send + Sync>);

impl fmt::Display for Loading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("loading the stores failed")
    }
}

impl std::error::Error for Loading {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

#[tokio::test(start_paused = true)]
async fn a_token_failure_is_found_under_the_callers_own_errors() {
    let idm = FakeIdm::new();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(retry())
        .with(IdmAuthMiddleware::with_manager(refused(&idm), scope()))
        .build();
    let error = client.get(URL).send().await.unwrap_err();
    let wrapped = Loading(Box::new(Loading(Box::new(error))));
    assert_refused(Error::find_in(&wrapped));
}

/// An error that names itself as its own source.
#[derive(Debug)]
struct Loop;

impl fmt::Display for Loop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("loop")
    }
}

impl std::error::Error for Loop {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self)
    }
}

#[test]
fn a_chain_without_one_is_none_even_when_it_loops() {
    assert!(Error::find_in(&Loop).is_none());
    let io = std::io::Error::other("not ours");
    assert!(Error::find_in(&io).is_none());
    let middleware = reqwest_middleware::Error::middleware(io);
    assert!(Error::find_in(&middleware).is_none());
}
