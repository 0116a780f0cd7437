//! CONTRACT §1 rules, each driven through the real server over mTLS.

mod common;

use common::{TestGateway, citizen, lookup_req, put};
use popgate::pb;
use tonic::Code;

const ID: &str = "001087000001";

async fn gateway_with_one() -> TestGateway {
    let gw = TestGateway::start().await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    gw
}

fn verify_req(id: &str, claims: pb::Claims, mode: pb::MatchMode) -> pb::VerifyRequest {
    pb::VerifyRequest {
        citizen_id: id.into(),
        claims: Some(claims),
        purpose: "subscriber-verification".into(),
        request_id: "tx-1".into(),
        mode: mode as i32,
    }
}

#[tokio::test]
async fn lookup_releases_only_the_requested_fields() {
    let gw = gateway_with_one().await;
    let mut c = gw.agency("ministry").await;
    let r = c
        .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap()
        .into_inner();
    let got = r.citizen.unwrap();
    assert_eq!(got.full_name, "Nguyễn Văn An");
    assert_eq!(got.citizen_id, ID);
    assert_eq!(got.version, 1);
    assert!(got.updated_at.is_some());
    assert!(got.date_of_birth.is_empty() && got.permanent_address.is_empty() && got.sex == 0);
    assert_eq!(r.request_id, format!("req-{ID}"));
    assert!(r.audit_seq > 0);
}

#[tokio::test]
async fn an_empty_mask_releases_every_readable_field_and_nothing_else() {
    let gw = gateway_with_one().await;
    let mut c = gw.agency("ministry").await;
    let got = c
        .lookup(lookup_req(ID, &[], "health-insurance"))
        .await
        .unwrap()
        .into_inner()
        .citizen
        .unwrap();
    assert_eq!(got.full_name, "Nguyễn Văn An");
    assert_eq!(got.date_of_birth, "1987-03-14");
    assert_eq!(got.sex, pb::Sex::Male as i32);
    assert!(!got.permanent_address.is_empty());
    assert_eq!(got.life_status, pb::LifeStatus::Alive as i32);
    // Not in the ministry's read rights:
    assert!(got.current_address.is_empty() && got.religion.is_empty());
    assert!(got.household_head_id.is_empty() && got.card_issued_on.is_empty());
}

#[tokio::test]
async fn a_field_outside_the_rights_is_denied_by_name() {
    let gw = gateway_with_one().await;
    let mut c = gw.agency("utility").await;
    let e = c
        .lookup(lookup_req(
            ID,
            &["full_name", "permanent_address"],
            "electricity-contract",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("permanent_address"), "{}", e.message());
}

#[tokio::test]
async fn unknown_and_non_personal_mask_paths_are_invalid() {
    let gw = gateway_with_one().await;
    let mut c = gw.agency("ministry").await;
    for path in ["fullName", "version", "citizen_id", "updated_at", ""] {
        let e = c
            .lookup(lookup_req(ID, &[path], "health-insurance"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{path:?}");
        assert!(e.message().contains("read_mask"), "{}", e.message());
    }
}

#[tokio::test]
async fn a_purpose_not_given_to_the_client_is_denied() {
    let gw = gateway_with_one().await;
    let mut c = gw.agency("ministry").await;
    let e = c
        .lookup(lookup_req(ID, &["full_name"], "marketing"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("purpose"), "{}", e.message());
}

#[tokio::test]
async fn methods_outside_the_role_are_denied() {
    let gw = gateway_with_one().await;
    let e = pb::registry_admin_client::RegistryAdminClient::new(gw.channel("ministry").await)
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(citizen("001087000002", "Trần Văn Bình")),
            expected_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = gw
        .agency("registry")
        .await
        .lookup(lookup_req(ID, &[], "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = pb::operator_client::OperatorClient::new(gw.channel("telecom").await)
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("role"), "{}", e.message());
}

#[tokio::test]
async fn a_certificate_from_our_ca_with_an_unknown_cn_is_denied() {
    let gw = gateway_with_one().await;
    let e = gw
        .agency("stranger")
        .await
        .lookup(lookup_req(ID, &[], "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("unknown client"), "{}", e.message());
}

#[tokio::test]
async fn a_revoked_client_cannot_call() {
    let gw = TestGateway::start_with(common::Options {
        revoked: vec!["ministry".into()],
        ..Default::default()
    })
    .await;
    let tls = gw.tls_for("ministry");
    // rustls refuses the certificate in the handshake; depending on timing the client sees
    // it when connecting or on its first call.
    match popgate::client::connect(&gw.addr.to_string(), "localhost", &tls).await {
        Err(_) => {}
        Ok(ch) => {
            let e = pb::identity_gateway_client::IdentityGatewayClient::new(ch)
                .lookup(lookup_req(ID, &[], "health-insurance"))
                .await
                .unwrap_err();
            assert_ne!(e.code(), Code::Ok);
        }
    }
    // Others are unaffected.
    gw.agency("utility")
        .await
        .lookup(lookup_req(ID, &[], "electricity-contract"))
        .await
        .expect_err("not found is fine, a handshake failure is not")
        .code()
        .eq(&Code::NotFound)
        .then_some(())
        .expect("utility reaches the application");
}

#[tokio::test]
async fn malformed_ids_are_invalid_with_the_reason() {
    let gw = gateway_with_one().await;
    let mut c = gw.agency("ministry").await;
    let cases = [
        ("00108700000", "12"),
        ("0010870000011", "12"),
        ("", "12"),
        ("00108700000x", "non-digit"),
        ("+01087000001", "non-digit"),
        ("003087000001", "province"),
        ("999087000001", "province"),
        ("001299000001", "future"),
        ("001899000001", "future"),
    ];
    for (id, why) in cases {
        let e = c
            .lookup(lookup_req(id, &["full_name"], "health-insurance"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{id:?}");
        assert!(e.message().contains(why), "{id:?}: {}", e.message());
    }
}

#[tokio::test]
async fn a_missing_citizen_is_not_found_for_lookup_and_verify() {
    let gw = gateway_with_one().await;
    let e = gw
        .agency("ministry")
        .await
        .lookup(lookup_req("001087999999", &[], "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = gw
        .agency("telecom")
        .await
        .verify(verify_req(
            "001087999999",
            pb::Claims {
                full_name: Some("Nguyễn Văn An".into()),
                ..Default::default()
            },
            pb::MatchMode::Exact,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn callers_without_any_right_are_denied() {
    let gw = gateway_with_one().await;
    let e = gw
        .agency("telecom")
        .await
        .lookup(lookup_req(ID, &[], "subscriber-verification"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = gw
        .agency("norights")
        .await
        .verify(pb::VerifyRequest {
            purpose: "administrative-procedure".into(),
            ..verify_req(
                ID,
                pb::Claims {
                    full_name: Some("x".into()),
                    ..Default::default()
                },
                pb::MatchMode::Exact,
            )
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn verify_checks_claims_exact_and_loose() {
    let gw = gateway_with_one().await;
    let mut c = gw.agency("telecom").await;
    let claims = |name: &str, dob: &str| pb::Claims {
        full_name: Some(name.into()),
        date_of_birth: Some(dob.into()),
        ..Default::default()
    };
    let r = c
        .verify(verify_req(
            ID,
            claims("  nguyễn văn  AN", "1987-03-14"),
            pb::MatchMode::Unspecified,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(r.matched);
    let names: Vec<_> = r
        .fields
        .iter()
        .map(|f| (f.field.as_str(), f.matched))
        .collect();
    assert_eq!(names, [("full_name", true), ("date_of_birth", true)]);
    assert_eq!(r.request_id, "tx-1");
    assert!(r.audit_seq > 0);

    let r = c
        .verify(verify_req(
            ID,
            claims("NGUYEN VAN AN", "1987-03-14"),
            pb::MatchMode::Exact,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.matched);
    assert!(!r.fields[0].matched && r.fields[1].matched);

    let r = c
        .verify(verify_req(
            ID,
            claims("NGUYEN VAN AN", "1987-03-14"),
            pb::MatchMode::Loose,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(r.matched);

    let r = c
        .verify(verify_req(
            ID,
            claims("NGUYEN VAN AN", "1987-03-15"),
            pb::MatchMode::Loose,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.matched && r.fields[0].matched && !r.fields[1].matched);
}

#[tokio::test]
async fn verify_refuses_bad_claims_by_name() {
    let gw = gateway_with_one().await;
    let mut c = gw.agency("telecom").await;
    let e = c
        .verify(verify_req(
            ID,
            pb::Claims {
                permanent_address: Some("Hà Nội".into()),
                ..Default::default()
            },
            pb::MatchMode::Exact,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("permanent_address"), "{}", e.message());
    let e = c
        .verify(verify_req(
            ID,
            pb::Claims {
                date_of_birth: Some("14/03/1987".into()),
                ..Default::default()
            },
            pb::MatchMode::Exact,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("claims.date_of_birth"),
        "{}",
        e.message()
    );
    let e = c
        .verify(verify_req(ID, pb::Claims::default(), pb::MatchMode::Exact))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let mut bad_mode = verify_req(
        ID,
        pb::Claims {
            full_name: Some("x".into()),
            ..Default::default()
        },
        pb::MatchMode::Exact,
    );
    bad_mode.mode = 9;
    let e = c.verify(bad_mode).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("mode"), "{}", e.message());
}

#[tokio::test]
async fn a_deceased_person_never_matches() {
    let gw = gateway_with_one().await;
    let mut dead = citizen(ID, "Nguyễn Văn An");
    dead.life_status = pb::LifeStatus::Deceased as i32;
    gw.registry()
        .await
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(dead),
            expected_version: 1,
        })
        .await
        .unwrap();
    let r = gw
        .agency("telecom")
        .await
        .verify(verify_req(
            ID,
            pb::Claims {
                full_name: Some("Nguyễn Văn An".into()),
                ..Default::default()
            },
            pb::MatchMode::Exact,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(r.deceased);
    assert!(!r.matched);
    assert!(r.fields[0].matched);
}

#[tokio::test]
async fn put_then_lookup_sees_the_new_version() {
    let gw = gateway_with_one().await;
    let mut agency = gw.agency("ministry").await;
    // Warm the reuse cache with version 1.
    let v1 = agency
        .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v1.citizen.unwrap().version, 1);
    let again = agency
        .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.reused);
    let r = gw
        .registry()
        .await
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(citizen(ID, "Nguyễn Văn Anh")),
            expected_version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.version, 2);
    assert!(r.audit_seq > 0);
    let got = agency
        .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap()
        .into_inner()
        .citizen
        .unwrap();
    assert_eq!((got.version, got.full_name.as_str()), (2, "Nguyễn Văn Anh"));
}

#[tokio::test]
async fn writes_use_optimistic_concurrency() {
    let gw = gateway_with_one().await;
    let mut reg = gw.registry().await;
    let put = |v: u64, name: &str| pb::PutCitizenRequest {
        citizen: Some(citizen(ID, name)),
        expected_version: v,
    };
    let e = reg.put_citizen(put(0, "X")).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    let e = reg.put_citizen(put(7, "X")).await.unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    assert!(e.message().contains("version 1"), "{}", e.message());
    let e = reg
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(citizen("001087000009", "Lê Văn C")),
            expected_version: 3,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    assert_eq!(
        reg.put_citizen(put(1, "Y"))
            .await
            .unwrap()
            .into_inner()
            .version,
        2
    );
    let e = reg.put_citizen(put(1, "Z")).await.unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
}

#[tokio::test]
async fn put_validates_the_record() {
    let gw = TestGateway::start().await;
    let mut reg = gw.registry().await;
    let mut bad = citizen(ID, "Nguyễn Văn An");
    bad.date_of_birth = "1990-01-01".into();
    let e = reg
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(bad),
            expected_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("citizen.date_of_birth"),
        "{}",
        e.message()
    );
    let e = reg
        .put_citizen(pb::PutCitizenRequest {
            citizen: None,
            expected_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn streams_answer_every_item_in_order_with_failures_inline() {
    let gw = gateway_with_one().await;
    put(&gw, citizen("079087000002", "Trần Thị Bình")).await;
    let ids = [ID, "12", "079087000002", "001087999999", ID, "003087000001"];
    let reqs: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| pb::LookupRequest {
            request_id: format!("item-{i}"),
            ..lookup_req(id, &["full_name"], "health-insurance")
        })
        .collect();
    let mut out = gw
        .agency("ministry")
        .await
        .lookup_stream(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while let Some(r) = out.message().await.unwrap() {
        got.push(r);
    }
    assert_eq!(got.len(), ids.len());
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.request_id, format!("item-{i}"));
    }
    let codes: Vec<_> = got
        .iter()
        .map(|r| r.error.as_ref().map(|e| e.code))
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some(Code::InvalidArgument as u32),
            None,
            Some(Code::NotFound as u32),
            None,
            Some(Code::InvalidArgument as u32)
        ]
    );
    assert_eq!(got[2].citizen.as_ref().unwrap().full_name, "Trần Thị Bình");
    assert!(got[1].citizen.is_none());

    // Verify streams too.
    let vreqs: Vec<_> = [ID, "001087999999"]
        .iter()
        .map(|id| {
            verify_req(
                id,
                pb::Claims {
                    full_name: Some("NGUYEN VAN AN".into()),
                    ..Default::default()
                },
                pb::MatchMode::Loose,
            )
        })
        .collect();
    let mut out = gw
        .agency("telecom")
        .await
        .verify_stream(tokio_stream::iter(vreqs))
        .await
        .unwrap()
        .into_inner();
    let first = out.message().await.unwrap().unwrap();
    assert!(first.matched && first.error.is_none());
    let second = out.message().await.unwrap().unwrap();
    assert_eq!(second.error.unwrap().code, Code::NotFound as u32);
    assert!(out.message().await.unwrap().is_none());
}

#[tokio::test]
async fn a_stream_outside_the_role_fails_as_a_whole() {
    let gw = gateway_with_one().await;
    let r = pb::identity_gateway_client::IdentityGatewayClient::new(gw.channel("registry").await)
        .lookup_stream(tokio_stream::iter(vec![lookup_req(ID, &[], "x")]))
        .await;
    let e = match r {
        Err(e) => e,
        Ok(resp) => resp.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn get_stats_counts_calls_and_records() {
    let gw = gateway_with_one().await;
    let mut c = gw.agency("ministry").await;
    for _ in 0..3 {
        c.lookup(lookup_req(ID, &["full_name"], "health-insurance"))
            .await
            .unwrap();
    }
    let _ = c
        .lookup(lookup_req("001087999999", &[], "health-insurance"))
        .await;
    let _ = c
        .lookup(lookup_req(ID, &["religion"], "health-insurance"))
        .await;
    let s = gw
        .operator()
        .await
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.records, 1);
    let m = s
        .clients
        .iter()
        .find(|c| c.client_id == "ministry")
        .unwrap();
    assert_eq!((m.requests, m.not_found, m.denied), (5, 1, 1));
    // The Put put the new record in the reuse cache, so all three lookups reuse it.
    assert_eq!(m.reused, 3);
    assert!(s.requests >= 5 && s.reused >= 3);
    assert!((s.reuse_rate - s.reused as f64 / s.requests as f64).abs() < 1e-9);
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::health_client::HealthClient;
    let gw = gateway_with_one().await;
    let ch = gw.channel("operator").await;
    let r = HealthClient::new(ch.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "popgate.v1.IdentityGateway".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let req = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut out = ServerReflectionClient::new(ch)
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        out.message().await.unwrap().unwrap().message_response
    else {
        panic!("no service list");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for s in [
        "popgate.v1.IdentityGateway",
        "popgate.v1.RegistryAdmin",
        "popgate.v1.Operator",
        "grpc.health.v1.Health",
    ] {
        assert!(names.contains(&s), "{names:?}");
    }
}

#[tokio::test]
async fn oversized_or_control_character_request_ids_are_invalid() {
    let gw = gateway_with_one().await;
    let mut c = gw.agency("ministry").await;
    for bad in ["x".repeat(129), "tx\n{\"forged\":1}".to_string()] {
        let mut req = lookup_req(ID, &["full_name"], "health-insurance");
        req.request_id = bad;
        let e = c.lookup(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("request_id"), "{}", e.message());
    }
    let mut ok = lookup_req(ID, &["full_name"], "health-insurance");
    ok.request_id = "Mã giao dịch 2026/11-000123".into();
    assert_eq!(
        c.lookup(ok).await.unwrap().into_inner().request_id,
        "Mã giao dịch 2026/11-000123"
    );
}
