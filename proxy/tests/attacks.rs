//! Requests a hostile page, user or program could send, each sent byte for byte and
//! checked against the upstream's request log: refused ones never reach it.

mod support;

use support::{Fakes, Proxy, raw, status_of};

/// One request (`Connection: close` added) and its status.
async fn send(proxy: &Proxy, head: &str) -> (u16, String) {
    let request = format!("{head}Connection: close\r\n\r\n");
    let answer = raw(proxy.addr, request.as_bytes()).await;
    (status_of(&answer), answer)
}

#[tokio::test]
async fn hostile_requests_are_refused_and_never_reach_the_upstream() {
    let fakes = Fakes::start().await;
    let proxy = Proxy::start(&fakes.env(), &[]);
    let host = format!("Host: {}\r\n", proxy.addr);
    let port = proxy.port();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "DNS rebinding: evil.example",
            "GET /stores HTTP/1.1\r\nHost: evil.example\r\n".into(),
            403,
            "host_refused",
        ),
        (
            "DNS rebinding with the port",
            format!("GET /stores HTTP/1.1\r\nHost: evil.example:{port}\r\n"),
            403,
            "host_refused",
        ),
        (
            "a name that starts like localhost",
            format!("GET /stores HTTP/1.1\r\nHost: localhost.evil.example:{port}\r\n"),
            403,
            "host_refused",
        ),
        (
            "no Host",
            "GET /stores HTTP/1.0\r\n".into(),
            403,
            "host_refused",
        ),
        (
            "absolute-form URI to another host",
            format!("GET http://evil.example/steal HTTP/1.1\r\n{host}"),
            400,
            "absolute_uri_refused",
        ),
        (
            "absolute-form URI naming the proxy itself",
            format!("GET http://{}/stores HTTP/1.1\r\n{host}", proxy.addr),
            400,
            "absolute_uri_refused",
        ),
        (
            "CONNECT",
            "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n".into(),
            405,
            "connect_refused",
        ),
        (
            "the client's own Authorization",
            format!("GET /stores HTTP/1.1\r\n{host}Authorization: Bearer stolen\r\n"),
            403,
            "client_authorization_refused",
        ),
        (
            "raw .. segments",
            format!("GET /api/../admin HTTP/1.1\r\n{host}"),
            400,
            "path_refused",
        ),
        (
            "percent-encoded .. segments",
            format!("GET /api/%2e%2e/admin HTTP/1.1\r\n{host}"),
            400,
            "path_refused",
        ),
        (
            "mixed-case, double-encoded .. segments",
            format!("GET /api/%252E%252e/admin HTTP/1.1\r\n{host}"),
            400,
            "path_refused",
        ),
        (
            "a page on another origin",
            format!(
                "POST /stores HTTP/1.1\r\n{host}Origin: http://127.0.0.1:1\r\nContent-Length: 0\r\n"
            ),
            403,
            "origin_refused",
        ),
        (
            "a same-site fetch without Origin",
            format!("GET /stores HTTP/1.1\r\n{host}Sec-Fetch-Site: same-site\r\n"),
            403,
            "cross_site_refused",
        ),
    ];
    for (what, head, status, code) in &cases {
        let (got, answer) = send(&proxy, head).await;
        assert_eq!(got, *status, "{what}: {answer}");
        assert!(answer.contains(code), "{what}: {answer}");
    }

    // A huge header: hyper answers 431 before the proxy sees the request.
    let huge = format!(
        "GET /stores HTTP/1.1\r\n{host}X-Huge: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let answer = raw(proxy.addr, huge.as_bytes()).await;
    assert_eq!(status_of(&answer), 431, "{answer}");

    assert!(
        fakes.api.recorded().is_empty(),
        "refused requests reached the upstream: {:?}",
        fakes.api.recorded()
    );
    assert_eq!(fakes.idm.token_requests(), 0, "and caused no login");
}

#[tokio::test]
async fn forwarded_and_hop_by_hop_headers_are_stripped() {
    let fakes = Fakes::start().await;
    let proxy = Proxy::start(&fakes.env(), &[]);
    let head = format!(
        "GET /stores HTTP/1.1\r\nHost: localhost:{}\r\n\
         X_Forwarded_For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nx-forwarded-host: evil.example\r\n\
         X_FORWARDED_PROTO: https\r\nForwarded: for=10.0.0.3\r\nX-Real-IP: 10.0.0.4\r\n\
         Connection: x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\n\
         Accept: application/json\r\n",
        proxy.port()
    );
    let (status, answer) = send(&proxy, &head).await;
    assert_eq!(status, 200, "{answer}");
    let log = fakes.api.recorded();
    assert_eq!(log.len(), 1);
    let mut names: Vec<&str> = log[0].headers.keys().map(|n| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["accept", "authorization", "host"]);
}

#[tokio::test]
async fn pass_client_auth_forwards_the_clients_header_without_a_login() {
    let fakes = Fakes::start().await;
    let proxy = Proxy::start(&fakes.env(), &["--pass-client-auth"]);
    let head = format!(
        "GET /stores HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer mine\r\n",
        proxy.port()
    );
    let (status, _) = send(&proxy, &head).await;
    assert_eq!(status, 401, "the fake API does not know the client's token");
    let log = fakes.api.recorded();
    assert_eq!(log[0].bearer(), Some("mine"));
    assert_eq!(fakes.idm.token_requests(), 0);
}

#[tokio::test]
async fn the_client_token_is_required_and_stripped() {
    use std::os::unix::fs::PermissionsExt;
    let fakes = Fakes::start().await;
    let dir = std::env::temp_dir().join(format!("bodhi-proxy-ct-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, "s3cret-token\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let proxy = Proxy::start(
        &fakes.env(),
        &["--client-token-file", file.to_str().unwrap()],
    );
    let host = format!("Host: localhost:{}\r\n", proxy.port());
    let (status, _) = send(&proxy, &format!("GET /stores HTTP/1.1\r\n{host}")).await;
    assert_eq!(status, 401);
    let wrong = format!("GET /stores HTTP/1.1\r\n{host}X-Bodhi-Proxy-Token: s3cret-tokeN\r\n");
    assert_eq!(send(&proxy, &wrong).await.0, 401);
    assert!(fakes.api.recorded().is_empty());
    let right = format!("GET /stores HTTP/1.1\r\n{host}X-Bodhi-Proxy-Token: s3cret-token\r\n");
    assert_eq!(send(&proxy, &right).await.0, 200);
    let log = fakes.api.recorded();
    assert!(
        !log[0].headers.contains_key("x-bodhi-proxy-token"),
        "stripped"
    );

    // A token file others can read is refused at start-up.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = Proxy::command(
        &fakes.env(),
        &["--client-token-file", file.to_str().unwrap()],
    )
    .output()
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("chmod 600"));
}

#[tokio::test]
async fn listening_off_loopback_needs_allow_remote_a_client_token_and_a_host() {
    let fakes = Fakes::start().await;
    let env = fakes.env();
    let cases: [(&[&str], &str); 3] = [
        (&["--listen", "0.0.0.0:0"], "--allow-remote"),
        (
            &["--listen", "0.0.0.0:0", "--allow-remote"],
            "--client-token-file",
        ),
        (
            &[
                "--listen",
                "0.0.0.0:0",
                "--allow-remote",
                "--client-token-file",
                "/dev/null",
                "--accept-host",
                ".*",
            ],
            "patterns are not accepted",
        ),
    ];
    for (args, says) in cases {
        let output = Proxy::command(&env, args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // An upstream off loopback over plain http, or a list, is refused too.
    for upstream in ["http://api.example", "https://a.example,https://b.example"] {
        let env = [("BODHI_API_URL".to_owned(), upstream.to_owned())];
        let output = Proxy::command(&env, &[]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{upstream}");
    }
}

#[tokio::test]
async fn empty_variables_count_as_unset() {
    let fakes = Fakes::start().await;
    let mut env = fakes.env();
    for name in [
        "BODHI_PROXY_UNIX_SOCKET",
        "BODHI_PROXY_REPLAY_LIMIT",
        "BODHI_PROXY_LOG",
        "BODHI_PROXY_ALLOW_REMOTE",
        "BODHI_PROXY_CLIENT_TOKEN_FILE",
        "BODHI_ENV",
        "BODHI_STORE",
    ] {
        env.push((name.into(), String::new()));
    }
    let proxy = Proxy::start(&env, &[]);
    let head = format!(
        "GET /stores HTTP/1.1\r\nHost: localhost:{}\r\n",
        proxy.port()
    );
    assert_eq!(send(&proxy, &head).await.0, 200);
}
