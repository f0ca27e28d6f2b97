//! `countersign://` links, validated strictly: anyone can craft one (a web page, a chat
//! message), so a link may only fill in the enrollment screen or open a request's screen. An
//! enrollment link still needs the server confirmed and the key touched; a request link shows
//! a request only if it is in this approver's verified inbox.

use countersign_approver::EnrollmentCode;

/// The one scheme the app answers to.
pub const SCHEME: &str = "countersign";
/// Longer links are refused before they are parsed.
const MAX_LINK_LEN: usize = 2048;
/// Request ids are `req_` plus 22 base64url characters today; allow some room, no more.
const MAX_REQUEST_ID_LEN: usize = 64;

/// What a valid link asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Fill in the enrollment screen.
    Enroll {
        /// The one-time code (`CSE1.…`), parsed and re-encoded.
        code: String,
        /// The server's address, when the link names one (http or https only).
        server: Option<String>,
    },
    /// Open this request's screen.
    Request {
        /// The request id.
        id: String,
    },
}

/// Why a link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a URL, or longer than any real link.
    #[error("not a link")]
    Malformed,
    /// Another scheme.
    #[error("not a countersign:// link")]
    OtherScheme,
    /// User, password, port or fragment: never in a real link.
    #[error("the link carries parts a Countersign link never has")]
    UnexpectedParts,
    /// Neither `enroll` nor `request/ID`.
    #[error("unknown link (only countersign://enroll?code=… and countersign://request/ID)")]
    Unknown,
    /// The enrollment code is missing or not a code.
    #[error("the link's enrollment code is missing or malformed")]
    BadCode,
    /// The server address is not an http(s) URL.
    #[error("the link's server address is not an http(s) address")]
    BadServer,
    /// A query parameter other than `code` and `server`, or one given twice.
    #[error("the link has an unknown or repeated parameter")]
    BadParameter,
    /// The request id has characters or a length no request id has.
    #[error("the link's request id is malformed")]
    BadRequestId,
}

/// Parses `text` as a Countersign link.
pub fn parse(text: &str) -> Result<Link, LinkError> {
    if text.len() > MAX_LINK_LEN {
        return Err(LinkError::Malformed);
    }
    let url = url::Url::parse(text).map_err(|_| LinkError::Malformed)?;
    if url.scheme() != SCHEME {
        return Err(LinkError::OtherScheme);
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.port().is_some()
        || url.fragment().is_some()
    {
        return Err(LinkError::UnexpectedParts);
    }
    let path = url.path().trim_end_matches('/');
    match url.host_str() {
        Some("enroll") if path.is_empty() => enroll(&url),
        Some("request") if url.query().is_none() => {
            request_id(path.strip_prefix('/').unwrap_or(path)).map(|id| Link::Request { id })
        }
        _ => Err(LinkError::Unknown),
    }
}

fn enroll(url: &url::Url) -> Result<Link, LinkError> {
    let (mut code, mut server) = (None, None);
    for (key, value) in url.query_pairs() {
        let slot = match key.as_ref() {
            "code" => &mut code,
            "server" => &mut server,
            _ => return Err(LinkError::BadParameter),
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(LinkError::BadParameter);
        }
    }
    let code =
        EnrollmentCode::parse(&code.ok_or(LinkError::BadCode)?).map_err(|_| LinkError::BadCode)?;
    let code = code.to_string();
    let server = server.map(|s| server_address(&s)).transpose()?;
    Ok(Link::Enroll { code, server })
}

fn server_address(text: &str) -> Result<String, LinkError> {
    let url = url::Url::parse(text).map_err(|_| LinkError::BadServer)?;
    let plain = url.username().is_empty() && url.password().is_none();
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !plain {
        return Err(LinkError::BadServer);
    }
    Ok(text.to_owned())
}

fn request_id(id: &str) -> Result<String, LinkError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(id.to_owned())
    } else {
        Err(LinkError::BadRequestId)
    }
}

/// The link that opens request `id`'s screen; `None` for an id no link may carry.
pub fn request_link(id: &str) -> Option<String> {
    request_id(id)
        .ok()
        .map(|id| format!("{SCHEME}://request/{id}"))
}

/// The links among a launch's arguments (the first is the program), valid or not: a link is
/// any argument that starts with `countersign:`.
pub fn in_arguments(args: &[String]) -> Vec<Result<Link, LinkError>> {
    args.iter()
        .skip(1)
        .filter(|a| {
            a.get(..SCHEME.len() + 1)
                .is_some_and(|p| p.eq_ignore_ascii_case("countersign:"))
        })
        .map(|a| parse(a))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_link_made_here_parses_back_and_a_bad_id_makes_none() {
        let link = request_link("req_AbC-1").unwrap();
        assert_eq!(
            parse(&link),
            Ok(Link::Request {
                id: "req_AbC-1".into()
            })
        );
        assert_eq!(request_link("req/../x"), None);
        assert_eq!(request_link(""), None);
    }

    const CODE: &str = "CSE1.c2VjcmV0c2VjcmV0c2VjcmV0.a2lk";

    #[test]
    fn an_enrollment_link_fills_code_and_server() {
        let link = parse(&format!(
            "countersign://enroll?code={CODE}&server=https%3A%2F%2Fcs.example.com"
        ))
        .unwrap();
        assert_eq!(
            link,
            Link::Enroll {
                code: CODE.into(),
                server: Some("https://cs.example.com".into())
            }
        );
        let link = parse(&format!("countersign://enroll/?code={CODE}")).unwrap();
        assert_eq!(
            link,
            Link::Enroll {
                code: CODE.into(),
                server: None
            }
        );
    }

    #[test]
    fn a_request_link_names_one_request() {
        assert_eq!(
            parse("countersign://request/req_AbC-12_x").unwrap(),
            Link::Request {
                id: "req_AbC-12_x".into()
            }
        );
    }

    #[test]
    fn crafted_links_are_refused_with_the_reason() {
        let cases = [
            ("not a url", LinkError::Malformed),
            ("https://evil.example/enroll?code=x", LinkError::OtherScheme),
            ("countersign://approve/req_1", LinkError::Unknown),
            ("countersign://request/", LinkError::BadRequestId),
            ("countersign://request/a/b", LinkError::BadRequestId),
            ("countersign://request/req%20x", LinkError::BadRequestId),
            ("countersign://request/req_1?approve=1", LinkError::Unknown),
            (
                "countersign://request/req_1#approve",
                LinkError::UnexpectedParts,
            ),
            (
                "countersign://user@request/req_1",
                LinkError::UnexpectedParts,
            ),
            ("countersign://request:99/req_1", LinkError::UnexpectedParts),
            ("countersign://enroll", LinkError::BadCode),
            ("countersign://enroll?code=hello", LinkError::BadCode),
            ("countersign://enroll/x?code=hello", LinkError::Unknown),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Err(want), "{text}");
        }
        let long_id = format!("countersign://request/{}", "a".repeat(65));
        assert_eq!(parse(&long_id), Err(LinkError::BadRequestId));
        assert_eq!(
            parse(&format!("countersign://x/{}", "a".repeat(3000))),
            Err(LinkError::Malformed)
        );
        let twice = format!("countersign://enroll?code={CODE}&code={CODE}");
        assert_eq!(parse(&twice), Err(LinkError::BadParameter));
        let extra = format!("countersign://enroll?code={CODE}&auto=1");
        assert_eq!(parse(&extra), Err(LinkError::BadParameter));
        for server in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://user:pw@cs.example.com",
        ] {
            let text = format!(
                "countersign://enroll?code={CODE}&server={}",
                url::form_urlencoded::byte_serialize(server.as_bytes()).collect::<String>()
            );
            assert_eq!(parse(&text), Err(LinkError::BadServer), "{server}");
        }
    }

    #[test]
    fn links_are_picked_out_of_a_launch_s_arguments() {
        let args = [
            "countersign-desktop",
            "--hidden",
            "countersign://request/req_1",
            "COUNTERSIGN://nope",
        ]
        .map(String::from);
        assert_eq!(
            in_arguments(&args),
            vec![
                Ok(Link::Request { id: "req_1".into() }),
                Err(LinkError::Unknown)
            ]
        );
        assert!(in_arguments(&["countersign-desktop".into()]).is_empty());
    }
}
