//! The listener's route table: served by an axum router built at once, documented only when asked.
//!
//! Each [`Route`] is made by [`route!`] from handlers annotated with `#[utoipa::path]`, so a route
//! cannot be served without being documented. What a route serves (its path and methods) is read from
//! the annotation when the router is built; its OpenAPI description (operation, parameters, schemas)
//! is kept as a function and built only when [`Documentation::replay`] is called, which
//! `GET /api/v1/openapi.json` does. Describing every operation allocates about 2 MB that is garbage a
//! moment later, and the allocator keeps those pages for the life of the process; a listener nobody
//! asks for its document no longer pays that at every start and every settings save.
//!
//! [`Routes`] composes like utoipa-axum's `OpenApiRouter` (`route`, `merge`, `nest`), and the
//! document is built by replaying the same steps on an `OpenApiRouter`, so it is the document
//! `OpenApiRouter` would have made (<https://docs.rs/utoipa-axum/0.2.0/utoipa_axum/router/struct.OpenApiRouter.html>).

use std::sync::Arc;

use axum::handler::Handler;
use axum::routing::MethodRouter;
use axum::Router;
use utoipa::openapi::path::Paths;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::PathItemExt;

use crate::engine::Engine;

/// Builds a [`Route`] from one or more handlers annotated with `#[utoipa::path]` that share a path,
/// named as `handler` or `module::handler`.
macro_rules! route {
    ($($handler:ident $(:: $item:ident)?),+ $(,)?) => {
        $crate::listener::openapi::table::Route::new(
            vec![$(
                $crate::listener::openapi::table::served::<
                    $crate::listener::openapi::table::route!(@described $handler $(:: $item)?), _, _
                >($handler $(:: $item)?)
            ),+],
            || utoipa_axum::routes!($($handler $(:: $item)?),+),
        )
    };
    // The type `#[utoipa::path]` generates beside a handler, which implements `utoipa::Path`.
    (@described $handler:ident) => { paste::paste!([<__path_ $handler>]) };
    (@described $module:ident :: $handler:ident) => { paste::paste!($module::[<__path_ $handler>]) };
}
pub(crate) use route;

/// A handler's path and its method router, as its annotation `P` declares them.
pub fn served<P, H, T>(handler: H) -> (String, MethodRouter<Engine>)
where
    P: utoipa::Path,
    H: Handler<T, Engine>,
    T: 'static,
{
    let router = P::methods().iter().fold(MethodRouter::new(), |router, method| router.on(method.to_method_filter(), handler.clone()));
    (P::path(), router)
}

/// How a route is documented: its handlers' descriptions, moved to `at` when it is served elsewhere.
#[derive(Debug)]
struct Description {
    describe: fn() -> UtoipaMethodRouter<Engine>,
    at: Option<String>,
}

impl Description {
    fn build(&self) -> UtoipaMethodRouter<Engine> {
        let (schemas, paths, router) = (self.describe)();
        let Some(at) = &self.at else { return (schemas, paths, router) };
        let mut moved = Paths::new();
        for (_, item) in paths.paths {
            moved.paths.insert(at.clone(), item);
        }
        (schemas, moved, router)
    }
}

/// One route of the listener: the paths it is served at, what serves it, and how it is documented.
#[derive(Debug)]
pub struct Route {
    paths: Vec<String>,
    router: MethodRouter<Engine>,
    description: Description,
}

impl Route {
    /// Use [`route!`]. `handlers` are each handler's path and method router; `describe` documents them all.
    pub fn new(handlers: Vec<(String, MethodRouter<Engine>)>, describe: fn() -> UtoipaMethodRouter<Engine>) -> Self {
        let mut paths: Vec<String> = Vec::with_capacity(1);
        let mut router = MethodRouter::new();
        for (path, handler) in handlers {
            if !paths.contains(&path) {
                paths.push(path);
            }
            router = router.merge(handler);
        }
        Route { paths, router, description: Description { describe, at: None } }
    }

    /// The same route served, and documented, at `path` instead of the path its handlers are annotated
    /// with (the URL commands' segments come from the configuration).
    pub fn at(mut self, path: String) -> Self {
        self.paths = vec![path.clone()];
        self.description.at = Some(path);
        self
    }
}

/// A step of building the document, in the order the routes were composed.
#[derive(Debug)]
enum Step {
    Route(Description),
    Merge(Vec<Step>),
    Nest(String, Vec<Step>),
}

/// Routes being composed: the axum router so far, and the steps that document it.
#[derive(Debug)]
pub struct Routes {
    router: Router<Engine>,
    steps: Vec<Step>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    pub fn new() -> Self {
        Routes { router: Router::new(), steps: Vec::new() }
    }

    /// Serves `route` at each of its paths.
    pub fn route(mut self, route: Route) -> Self {
        for path in &route.paths {
            let path = if path.is_empty() { "/" } else { path.as_str() };
            self.router = self.router.route(path, route.router.clone());
        }
        self.steps.push(Step::Route(route.description));
        self
    }

    /// Serves `other`'s routes beside these.
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.steps.push(Step::Merge(other.steps));
        self
    }

    /// Serves `other`'s routes under `prefix` (`/api/v1`).
    pub fn nest(mut self, prefix: &str, other: Routes) -> Self {
        self.router = self.router.nest(prefix, other.router);
        self.steps.push(Step::Nest(prefix.to_owned(), other.steps));
        self
    }

    /// The router to serve, and how to document it.
    pub fn split(self) -> (Router<Engine>, Documentation) {
        (self.router, Documentation(Arc::new(self.steps)))
    }
}

/// How to document a router made by [`Routes`]; cheap to clone and to keep.
#[derive(Debug, Clone)]
pub struct Documentation(Arc<Vec<Step>>);

impl Documentation {
    /// `base` with every route of the router documented, composed as the router was.
    pub fn replay(&self, base: OpenApiRouter<Engine>) -> OpenApiRouter<Engine> {
        replay(base, &self.0)
    }
}

fn replay(mut router: OpenApiRouter<Engine>, steps: &[Step]) -> OpenApiRouter<Engine> {
    for step in steps {
        router = match step {
            Step::Route(description) => router.routes(description.build()),
            Step::Merge(steps) => router.merge(replay(OpenApiRouter::new(), steps)),
            Step::Nest(prefix, steps) => router.nest(prefix, replay(OpenApiRouter::new(), steps)),
        };
    }
    router
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;
    use utoipa_axum::routes;

    use super::*;

    #[utoipa::path(get, path = "/one", responses((status = 200, description = "One")))]
    async fn one() -> &'static str {
        "one"
    }

    #[utoipa::path(post, path = "/one", responses((status = 200, description = "One, posted")))]
    async fn one_posted() -> &'static str {
        "one posted"
    }

    #[utoipa::path(get, path = "/two", responses((status = 200, description = "Two")))]
    async fn two() -> &'static str {
        "two"
    }

    fn table() -> Routes {
        Routes::new()
            .route(route!(one, one_posted))
            .nest("/inner", Routes::new().route(route!(two)).route(route!(one).at("/moved".into())))
            .merge(Routes::new().route(route!(two).at("/".into())))
    }

    /// The same composition through utoipa-axum's own router, the document ours must equal.
    fn composed_by_utoipa_axum() -> OpenApiRouter<Engine> {
        let moved = |(schemas, paths, router): UtoipaMethodRouter<Engine>, at: &str| {
            let mut moved = Paths::new();
            for (_, item) in paths.paths {
                moved.paths.insert(at.to_owned(), item);
            }
            (schemas, moved, router)
        };
        OpenApiRouter::new()
            .routes(routes!(one, one_posted))
            .nest("/inner", OpenApiRouter::new().routes(routes!(two)).routes(moved(routes!(one), "/moved")))
            .merge(OpenApiRouter::new().routes(moved(routes!(two), "/")))
    }

    #[test]
    fn the_document_is_the_one_utoipa_axum_composes() {
        let (_, documentation) = table().split();
        let (_, ours) = documentation.replay(OpenApiRouter::new()).split_for_parts();
        let (_, theirs) = composed_by_utoipa_axum().split_for_parts();
        let (ours, theirs) = (ours.to_pretty_json().expect("json"), theirs.to_pretty_json().expect("json"));
        assert_eq!(ours, theirs);
        for path in ["\"/one\"", "\"/inner/two\"", "\"/inner/moved\"", "\"/\""] {
            assert!(ours.contains(path), "{path} is documented: {ours}");
        }
    }

    #[tokio::test]
    async fn the_router_serves_what_the_annotations_say() {
        let engine = crate::engine::Engine::start_with(
            crate::config::Config::default(),
            crate::engine::Services::with_secrets(&crate::config::Config::default(), Arc::new(crate::secrets::MemorySecrets::default())),
        );
        let (router, _) = table().split();
        let router = router.with_state(engine.clone());
        let cases = [
            ("GET", "/one", StatusCode::OK, "one"),
            ("POST", "/one", StatusCode::OK, "one posted"),
            ("GET", "/inner/two", StatusCode::OK, "two"),
            ("GET", "/inner/moved", StatusCode::OK, "one"),
            ("GET", "/", StatusCode::OK, "two"),
            // Served at the configured path only, and with the annotated methods only.
            ("GET", "/inner/one", StatusCode::NOT_FOUND, ""),
            ("GET", "/two", StatusCode::NOT_FOUND, ""),
            ("POST", "/inner/two", StatusCode::METHOD_NOT_ALLOWED, ""),
        ];
        for (method, path, status, body) in cases {
            let request = Request::builder().method(method).uri(path).body(Body::empty()).expect("request");
            let response = router.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
            assert_eq!(response.status(), status, "{method} {path}");
            let bytes = axum::body::to_bytes(response.into_body(), 1024).await.expect("body");
            if status == StatusCode::OK {
                assert_eq!(bytes, body.as_bytes(), "{method} {path}");
            }
        }
        engine.shutdown().await;
    }

    static DESCRIBED: AtomicUsize = AtomicUsize::new(0);

    fn counted() -> UtoipaMethodRouter<Engine> {
        DESCRIBED.fetch_add(1, Ordering::SeqCst);
        routes!(two)
    }

    #[test]
    fn routes_are_described_only_when_the_document_is_built() {
        let routes = Routes::new().route(Route::new(vec![served::<__path_two, _, _>(two)], counted));
        let (_router, documentation) = routes.split();
        assert_eq!(DESCRIBED.load(Ordering::SeqCst), 0, "building the router described the route");
        let (_, doc) = documentation.replay(OpenApiRouter::new()).split_for_parts();
        assert_eq!(DESCRIBED.load(Ordering::SeqCst), 1);
        assert!(doc.paths.paths.contains_key("/two"), "{:?}", doc.paths.paths.keys().collect::<Vec<_>>());
    }
}
