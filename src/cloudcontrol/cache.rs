//! List pages and GetResource results, cached with a TTL, a byte bound and single-flight.
//!
//! `try_get_with` makes concurrent identical requests wait for one call instead of each making
//! their own. Errors are not cached. Mutations call [`CachedApi::invalidate_type`]. With
//! `cache.stale_while_revalidate`, a list page past its TTL is still served (up to that much
//! longer) while one background call fetches it again, so dashboards that refresh often do not
//! each wait for, or pile up, calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;

use super::budget::CallBudget;
use super::{ListPage, ListRequest, MutationRequest, Place, ProgressEvent, RequestFilter, RequestPage, Resource, ResourceApi};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Page {
        request: ListRequest,
        token: Option<String>,
        generation: u64,
    },
    Get {
        place: Place,
        type_name: String,
        identifier: String,
        generation: u64,
    },
}

impl Key {
    /// The account and region (so two accounts never share an answer), and the type.
    fn place_and_type(&self) -> (&Place, &str) {
        match self {
            Key::Page { request, .. } => (&request.place, &request.type_name),
            Key::Get { place, type_name, .. } => (place, type_name),
        }
    }
}

#[derive(Debug, Clone)]
enum Entry {
    /// A list page and when it was fetched.
    Page(Arc<ListPage>, Instant),
    /// A GetResource answer and when it was fetched.
    Get(Arc<Option<Resource>>, Instant),
}

impl Entry {
    fn weight(&self) -> u32 {
        match self {
            Entry::Page(p, _) => p.weight(),
            Entry::Get(r, _) => r.as_ref().as_ref().map_or(64, |r| u32::try_from(r.weight()).unwrap_or(u32::MAX)),
        }
    }
}

/// A [`ResourceApi`] in front of another, reusing answers for `ttl`.
pub struct CachedApi {
    inner: Arc<dyn ResourceApi>,
    cache: Option<Cache<Key, Entry>>,
    ttl: Duration,
    /// How long past `ttl` a list page is still served while a background call refreshes it
    /// (`cache.stale_while_revalidate`); zero: never.
    stale_for: Duration,
    /// Pages being refreshed in the background, so each is refreshed once at a time.
    refreshing: Arc<std::sync::Mutex<std::collections::HashSet<Key>>>,
    max_bytes: u64,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
    /// Per (place, type): how many times its entries were invalidated. Keys carry the
    /// generation their read started in, so a read in flight across a mutation's invalidation
    /// stores its (possibly old) answer where no later read looks.
    /// By place, then type, so a lookup borrows the names instead of copying them.
    generations: std::sync::Mutex<std::collections::HashMap<Place, std::collections::HashMap<String, u64>>>,
    /// Places whose region the account has not enabled, and when that was learnt: skipped
    /// by `regions = "*"` reads for the cache TTL.
    not_enabled: std::sync::Mutex<std::collections::HashMap<Place, std::time::Instant>>,
}

/// The cache as `cloudpg.cache` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheStats {
    pub entries: u64,
    pub bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub ttl: Duration,
    pub max_bytes: u64,
}

impl CachedApi {
    /// `ttl` of zero disables caching.
    pub fn new(inner: Arc<dyn ResourceApi>, ttl: Duration, max_bytes: u64) -> CachedApi {
        Self::with_stale(inner, ttl, Duration::ZERO, max_bytes)
    }

    /// The same, serving list pages up to `stale_for` past `ttl` while refreshing them.
    pub fn with_stale(inner: Arc<dyn ResourceApi>, ttl: Duration, stale_for: Duration, max_bytes: u64) -> CachedApi {
        let cache = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .time_to_live(ttl.saturating_add(stale_for))
                .max_capacity(max_bytes)
                .weigher(|_k: &Key, v: &Entry| v.weight())
                .support_invalidation_closures()
                .build()
        });
        CachedApi {
            inner,
            cache,
            ttl,
            stale_for,
            refreshing: Arc::default(),
            max_bytes,
            hits: Default::default(),
            misses: Default::default(),
            generations: Default::default(),
            not_enabled: Default::default(),
        }
    }

    /// How many times the type's entries in an account's region were invalidated: what is
    /// derived from its answers is stale once this changes.
    pub fn generation(&self, place: &Place, type_name: &str) -> u64 {
        let generations = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        generations.get(place).and_then(|types| types.get(type_name)).copied().unwrap_or(0)
    }

    /// Drops everything cached for a type in an account's region (after a mutation).
    pub fn invalidate_type(&self, place: &Place, type_name: &str) {
        *self
            .generations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(place.clone())
            .or_default()
            .entry(type_name.to_string())
            .or_default() += 1;
        if let Some(cache) = &self.cache {
            let (place, type_name) = (place.clone(), type_name.to_string());
            // Only fails when closures were not enabled at build time, which they are.
            let _ = cache.invalidate_entries_if(move |k, _| k.place_and_type() == (&place, type_name.as_str()));
        }
    }

    /// Remembers that the account has not enabled this region, for the cache TTL.
    pub fn remember_not_enabled(&self, place: &Place) {
        self.not_enabled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(place.clone(), std::time::Instant::now());
    }

    /// Whether the account was found not to have enabled this region within the cache TTL.
    pub fn known_not_enabled(&self, place: &Place) -> bool {
        let mut known = self.not_enabled.lock().unwrap_or_else(|p| p.into_inner());
        known.retain(|_, at| at.elapsed() < self.ttl);
        known.contains_key(place)
    }

    /// Whether the configuration has an account of this name.
    pub fn has_account(&self, account: &str) -> bool {
        self.inner.has_account(account)
    }

    /// The 12-digit id of a configured account.
    pub async fn account_id(&self, account: &str) -> Result<String> {
        self.inner.account_id(account).await
    }

    /// Whether calls can be made: the credentials can be had.
    pub async fn ready(&self) -> Result<()> {
        self.inner.ready().await
    }

    /// (entries, approximate bytes) cached now.
    pub async fn size(&self) -> (u64, u64) {
        let Some(cache) = &self.cache else { return (0, 0) };
        // The counts lag inserts until the cache's housekeeping has run.
        cache.run_pending_tasks().await;
        (cache.entry_count(), cache.weighted_size())
    }

    /// Size, hit counts since start, and bounds.
    pub async fn stats(&self) -> CacheStats {
        let (entries, bytes) = self.size().await;
        CacheStats {
            entries,
            bytes,
            hits: self.hits.load(std::sync::atomic::Ordering::Relaxed),
            misses: self.misses.load(std::sync::atomic::Ordering::Relaxed),
            ttl: if self.cache.is_some() { self.ttl } else { Duration::ZERO },
            max_bytes: self.max_bytes,
        }
    }

    /// A scan sent a list it had kept (`catalog::snapshots`) instead of looking up its answers.
    pub fn count_scan_hit(&self) {
        self.count_lookup("scan", true);
    }

    fn count_lookup(&self, kind: &'static str, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::observe::metrics::cache_lookup(kind, hit);
    }

    /// Starts a mutation (never cached; the caller invalidates what it touches).
    pub async fn mutate(&self, request: &MutationRequest) -> Result<ProgressEvent> {
        self.inner.mutate(request).await
    }

    pub async fn request_status(&self, place: &Place, request_token: &str) -> Result<ProgressEvent> {
        self.inner.request_status(place, request_token).await
    }

    pub async fn list_requests(&self, place: &Place, filter: &RequestFilter, next_token: Option<&str>) -> Result<RequestPage> {
        self.inner.list_requests(place, filter, next_token).await
    }

    /// How long answers are reused; zero when they are not.
    pub fn ttl(&self) -> Duration {
        if self.cache.is_some() {
            self.ttl
        } else {
            Duration::ZERO
        }
    }

    /// A list page, from the cache unless `bypass`; a call it makes is taken from `budget`.
    pub async fn list_page_cached(
        &self,
        request: &ListRequest,
        next_token: Option<&str>,
        bypass: bool,
        budget: &CallBudget,
    ) -> Result<Arc<ListPage>> {
        Ok(self.list_page_cached_at(request, next_token, bypass, budget).await?.0)
    }

    /// [`Self::list_page_cached`], and when the page was fetched.
    pub async fn list_page_cached_at(
        &self,
        request: &ListRequest,
        next_token: Option<&str>,
        bypass: bool,
        budget: &CallBudget,
    ) -> Result<(Arc<ListPage>, Instant)> {
        let call = || async {
            budget.take("ListResources", &request.type_name, &request.place)?;
            self.inner.list_page(request, next_token).await
        };
        let Some(cache) = self.cache.as_ref().filter(|_| !bypass) else {
            return call().await.map(|p| (Arc::new(p), Instant::now()));
        };
        let key = Key::Page {
            request: request.clone(),
            token: next_token.map(str::to_string),
            generation: self.generation(&request.place, &request.type_name),
        };
        let missed = std::sync::atomic::AtomicBool::new(false);
        let entry = cache
            .try_get_with(key.clone(), async {
                missed.store(true, std::sync::atomic::Ordering::Relaxed);
                call().await.map(|p| Entry::Page(Arc::new(p), Instant::now()))
            })
            .await
            .map_err(shared_error)?;
        self.count_lookup("page", !missed.load(std::sync::atomic::Ordering::Relaxed));
        match entry {
            Entry::Page(p, fetched) => {
                if !self.stale_for.is_zero() && fetched.elapsed() > self.ttl {
                    self.refresh(cache, key, request, next_token);
                }
                Ok((p, fetched))
            }
            Entry::Get(..) => Err(Error::internal("cache entry of the wrong kind")),
        }
    }

    /// Fetches a stale page again in the background (once at a time), the server's own call:
    /// the statement that found it stale has its answer already.
    fn refresh(&self, cache: &Cache<Key, Entry>, key: Key, request: &ListRequest, next_token: Option<&str>) {
        if !self.refreshing.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone()) {
            return;
        }
        let (inner, cache, refreshing) = (self.inner.clone(), cache.clone(), self.refreshing.clone());
        let (request, token) = (request.clone(), next_token.map(str::to_string));
        tokio::spawn(async move {
            match inner.list_page(&request, token.as_deref()).await {
                // Under the key it was read with: after an invalidation, no read looks there.
                Ok(page) => cache.insert(key.clone(), Entry::Page(Arc::new(page), Instant::now())).await,
                Err(e) => tracing::debug!(error = %e.log_summary(), "refreshing a stale list page failed; it stays until it expires"),
            }
            refreshing.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        });
    }

    /// A GetResource result, from the cache unless `bypass`; a call it makes is taken from
    /// `budget`.
    pub async fn get_cached(
        &self,
        place: &Place,
        type_name: &str,
        identifier: &str,
        bypass: bool,
        budget: &CallBudget,
    ) -> Result<Arc<Option<Resource>>> {
        Ok(self.get_cached_at(place, type_name, identifier, bypass, budget).await?.0)
    }

    /// [`Self::get_cached`], and when the answer was fetched.
    pub async fn get_cached_at(
        &self,
        place: &Place,
        type_name: &str,
        identifier: &str,
        bypass: bool,
        budget: &CallBudget,
    ) -> Result<(Arc<Option<Resource>>, Instant)> {
        let call = || async {
            budget.take("GetResource", type_name, place)?;
            self.inner.get(place, type_name, identifier).await
        };
        let Some(cache) = self.cache.as_ref().filter(|_| !bypass) else {
            return call().await.map(|r| (Arc::new(r), Instant::now()));
        };
        let key = Key::Get {
            place: place.clone(),
            type_name: type_name.to_string(),
            identifier: identifier.to_string(),
            generation: self.generation(place, type_name),
        };
        let missed = std::sync::atomic::AtomicBool::new(false);
        let entry = cache
            .try_get_with(key, async {
                missed.store(true, std::sync::atomic::Ordering::Relaxed);
                call().await.map(|r| Entry::Get(Arc::new(r), Instant::now()))
            })
            .await
            .map_err(shared_error)?;
        self.count_lookup("get", !missed.load(std::sync::atomic::Ordering::Relaxed));
        match entry {
            Entry::Get(r, fetched) => Ok((r, fetched)),
            Entry::Page(..) => Err(Error::internal("cache entry of the wrong kind")),
        }
    }
}

/// The error every waiter of a failed single-flight call gets.
fn shared_error(e: Arc<Error>) -> Error {
    Arc::try_unwrap(e).unwrap_or_else(|shared| shared.as_ref().clone())
}
