//! Path and method → page, in the order every request takes: the viewer (403), its rate (429),
//! the route (404, 405), the parameters (400), the read, then the audit record, then the answer — a page
//! that shows what the log holds is never sent unless its own record was written (500
//! otherwise), as a gRPC answer never leaves before its record is durable.

use std::sync::Arc;
use std::time::Instant;

use super::html::{error_page, page};
use super::pages;
use super::params::{self, BadParam, PAGE_SIZE};
use super::viewer::{self, Viewer};
use super::{Console, now_text};
use crate::audit::query::{Filter, Source, owned};
use crate::identity::Peer;

/// A request as the routes see it (the http layer's own types stay there).
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// A browser said the request came from another site (`Sec-Fetch-Site`, `Origin`): a
    /// form elsewhere cannot make a viewer's browser run the check.
    pub cross_site: bool,
}

/// The answer, before the http layer adds the headers every answer carries.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// For 405: the methods the path takes.
    pub allow: Option<&'static str>,
    /// For a download: the file name offered.
    pub attachment: Option<String>,
    /// For 429: seconds until a request would be taken.
    pub retry_after: Option<u64>,
}

const HTML: &str = "text/html; charset=utf-8";
const CSV: &str = "text/csv; charset=utf-8";

impl Reply {
    fn html(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: HTML,
            body: body.into_bytes(),
            allow: None,
            attachment: None,
            retry_after: None,
        }
    }

    fn error(status: u16, heading: &str, message: &str, viewer: Option<&Viewer>) -> Reply {
        Reply::html(status, error_page(status, heading, message, viewer))
    }
}

/// Why a page is not shown.
enum Fail {
    Bad(BadParam),
    /// The log could not be read, or the console's record not written.
    Unavailable(String),
}

impl From<BadParam> for Fail {
    fn from(b: BadParam) -> Fail {
        Fail::Bad(b)
    }
}

/// A page to show, and what its audit record says was looked at.
struct Shown {
    reply: Reply,
    /// `None`: the page shows nothing from the log (the bare search form) and is not audited.
    target: Option<String>,
    citizen: Option<String>,
}

enum Route<'a> {
    Search,
    Citizen(&'a str),
    CitizenCsv(&'a str),
    Client(&'a str),
    Integrity,
    Verify,
}

fn route(path: &str) -> Option<(Route<'_>, &'static str)> {
    const GET: &str = "GET, HEAD";
    if path == "/" {
        return Some((Route::Search, GET));
    }
    if path == "/integrity" {
        return Some((Route::Integrity, GET));
    }
    if path == "/integrity/verify" {
        return Some((Route::Verify, "POST"));
    }
    if let Some(id) = path
        .strip_prefix("/citizens/")
        .filter(|s| !s.is_empty() && !s.contains('/'))
    {
        return Some(match id.strip_suffix(".csv") {
            Some(id) => (Route::CitizenCsv(id), GET),
            None => (Route::Citizen(id), GET),
        });
    }
    if let Some(id) = path
        .strip_prefix("/clients/")
        .filter(|s| !s.is_empty() && !s.contains('/'))
    {
        return Some((Route::Client(id), GET));
    }
    None
}

/// Answers one request from `peer`.
pub async fn handle(console: &Arc<Console>, peer: &Arc<Peer>, req: Request<'_>) -> Reply {
    let started = Instant::now();
    let viewer = match viewer::admit(&console.gateway.policy(), peer) {
        Ok(v) => v,
        Err(why) => {
            console
                .audit_refusal(peer, &target(req.path, req.query), &why, started)
                .await;
            return Reply::error(403, "Forbidden", &why, None);
        }
    };
    // The viewer's own rate (`rate_per_sec`, `burst`), as for its gRPC calls: the console
    // reads the log with the gateway's CPU.
    if let Some(limit) = console.gateway.limits().client(&viewer.id)
        && let Err(wait) = limit.admit().await
    {
        let mut r = Reply::error(
            429,
            "Too Many Requests",
            &format!(
                "client {:?} is over its rate (rate_per_sec); retry in {} ms",
                &*viewer.id,
                wait.as_millis()
            ),
            Some(&viewer),
        );
        r.retry_after = Some(wait.as_secs_f64().ceil() as u64);
        return r;
    }
    let Some((route, allow)) = route(req.path) else {
        return Reply::error(404, "Not Found", "There is no such page.", Some(&viewer));
    };
    let method_ok = match allow {
        "POST" => req.method == "POST",
        _ => req.method == "GET" || req.method == "HEAD",
    };
    if !method_ok {
        let mut r = Reply::error(
            405,
            "Method Not Allowed",
            &format!("This page takes {allow}."),
            Some(&viewer),
        );
        r.allow = Some(allow);
        return r;
    }
    if matches!(route, Route::Verify) && req.cross_site {
        return Reply::error(
            403,
            "Forbidden",
            "The check is run from the console's own integrity page, not from another site.",
            Some(&viewer),
        );
    }
    let shown = match show(console, &viewer, route, req.path, req.query).await {
        Ok(s) => s,
        Err(Fail::Bad(b)) => {
            return Reply::error(
                400,
                "Bad Request",
                &format!("parameter {}: {}", b.name, b.why),
                Some(&viewer),
            );
        }
        Err(Fail::Unavailable(why)) => {
            return Reply::error(500, "Internal Server Error", &why, Some(&viewer));
        }
    };
    if let Some(target) = shown.target
        && let Err(e) = console.audit(&viewer, target, shown.citizen, started).await
    {
        tracing::warn!(error = %e, "console page not shown: its audit record could not be written");
        return Reply::error(
            500,
            "Internal Server Error",
            "The audit log cannot be written, so this page is not shown: every page that shows the log is audited first.",
            Some(&viewer),
        );
    }
    shown.reply
}

fn unreadable(e: crate::audit::query::QueryError) -> Fail {
    Fail::Unavailable(format!("The audit log cannot be read: {e}"))
}

/// `path?query` as the audit record names it.
fn target(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

async fn show(
    console: &Arc<Console>,
    viewer: &Viewer,
    route: Route<'_>,
    path: &str,
    query: &str,
) -> Result<Shown, Fail> {
    let html = |title: &str, body: String| Reply::html(200, page(title, Some(viewer), &body));
    match route {
        Route::Search if query.is_empty() => Ok(Shown {
            reply: html("Search", pages::search::empty()),
            target: None,
            citizen: None,
        }),
        Route::Search => {
            let search = params::search(query)?;
            let (filter, offset) = (search.filter.clone(), (search.page - 1) * PAGE_SIZE);
            let found = console
                .scan(move |log| log.page(&filter, offset, PAGE_SIZE, |r, _| owned(r)))
                .await
                .map_err(unreadable)?;
            let canonical = params::canonical(&search.filter, search.page);
            Ok(Shown {
                reply: html("Search", pages::search::results(&search, &found)),
                target: Some(target("/", &canonical)),
                citizen: search.filter.citizen.clone(),
            })
        }
        Route::Citizen(id) | Route::CitizenCsv(id) => {
            let csv = matches!(route, Route::CitizenCsv(_));
            let id = params::citizen_id("id", id)?;
            let range = params::time_range(query)?;
            let (who, r) = (id.clone(), range.clone());
            let rep = console
                .scan(move |log| log.report(&who, &r, |rec, _| owned(rec)))
                .await
                .map_err(unreadable)?;
            let reply = if csv {
                Reply {
                    status: 200,
                    content_type: CSV,
                    body: super::csv::report(&rep.accesses).into_bytes(),
                    allow: None,
                    attachment: Some(format!("citizen-{id}.csv")),
                    retry_after: None,
                }
            } else {
                html(
                    &format!("Citizen {id}"),
                    pages::citizen::render(&id, &range, query, &now_text(), &rep),
                )
            };
            Ok(Shown {
                reply,
                target: Some(target(path, &params::canonical(&Filter::range(range), 1))),
                citizen: Some(id),
            })
        }
        Route::Client(id) => {
            let id = params::client_id("id", id)?;
            let range = params::time_range(query)?;
            let filter = Filter {
                range: range.clone(),
                client: Some(id.clone()),
                ..Default::default()
            };
            let days = console
                .scan(move |log| {
                    let mut all = std::collections::BTreeMap::new();
                    log.fold(
                        &filter,
                        crate::audit::query::Order::OldestFirst,
                        &pages::client::ByDay,
                        |part| {
                            for (day, c) in part.value {
                                all.entry(day)
                                    .or_insert_with(crate::audit::query::Counts::default)
                                    .merge(&c);
                            }
                            Ok::<_, crate::audit::query::QueryError>(true)
                        },
                    )?;
                    Ok(pages::client::fill(all))
                })
                .await
                .map_err(unreadable)?;
            Ok(Shown {
                reply: html(
                    &format!("Client {id}"),
                    pages::client::render(&id, &range, &days),
                ),
                target: Some(target(path, &params::canonical(&Filter::range(range), 1))),
                citizen: None,
            })
        }
        Route::Integrity => {
            params::none(query)?;
            let last = console.last_verified();
            Ok(Shown {
                reply: html(
                    "Integrity",
                    integrity_page(console, last.as_ref(), false).await,
                ),
                target: Some(path.to_owned()),
                citizen: None,
            })
        }
        Route::Verify => {
            params::none(query)?;
            let v = console.verify(&viewer.id).await;
            Ok(Shown {
                reply: html("Integrity", integrity_page(console, Some(&v), true).await),
                target: Some(path.to_owned()),
                citizen: None,
            })
        }
    }
}

/// The integrity page: the newest checkpoints, read now, and the last check (`just_ran`: the
/// one this request ran).
async fn integrity_page(
    console: &Arc<Console>,
    last: Option<&super::Verified>,
    just_ran: bool,
) -> String {
    let latest = console.latest_checkpoints().await;
    pages::integrity::render(
        console.log.describe(),
        console.pubkeys.len(),
        &latest,
        last,
        just_ran,
    )
}
