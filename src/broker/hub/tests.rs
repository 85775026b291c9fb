//! The hub without sockets: subscriptions (capped, shared groups, No Local), stored sessions
//! and their expiry, and the retained store's byte bound.

use super::*;

const ME: ConnRef = ConnRef {
    thread: 0,
    slot: 3,
    generation: 7,
};

fn opts(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions::qos(qos)
}

fn granted(qos: QoS, existed: bool) -> Granted {
    Granted {
        qos: Some(qos),
        existed,
    }
}

#[test]
fn subscriptions_route_replace_and_are_capped() {
    let hub = Hub::new(Vec::new());
    assert!(!hub.has_subscribers());
    assert_eq!(
        hub.subscribe(
            ME,
            &[
                ("a/+", opts(QoS::AtLeastOnce)),
                ("a/+", opts(QoS::ExactlyOnce))
            ]
        ),
        [
            granted(QoS::AtLeastOnce, false),
            granted(QoS::ExactlyOnce, true)
        ]
    );
    let mut seen = Vec::new();
    hub.route("a/b", None, message, |to, qos, _| seen.push((to, qos)));
    assert_eq!(seen, [(ME, QoS::ExactlyOnce)], "re-subscribing replaces");
    let names: Vec<String> = (0..MAX_SUBSCRIPTIONS_PER_CONN)
        .map(|i| format!("f/{i}"))
        .collect();
    let filters: Vec<(&str, SubscriptionOptions)> = names
        .iter()
        .map(|n| (n.as_str(), opts(QoS::AtMostOnce)))
        .collect();
    let got = hub.subscribe(ME, &filters);
    assert_eq!(got.iter().filter(|g| g.qos.is_none()).count(), 1);
    assert_eq!(hub.unsubscribe(ME, Some(&["a/+", "x"])), [true, false]);
    let mut seen = 0;
    hub.route("a/b", None, message, |_, _, _| seen += 1);
    assert_eq!(seen, 0);
    hub.unsubscribe(ME, None);
    assert!(!hub.has_subscribers());
}

#[test]
fn a_share_group_gets_each_message_once_in_turn_and_no_local_is_kept() {
    let hub = Hub::new(Vec::new());
    let members: Vec<ConnRef> = (0..3).map(|slot| ConnRef { slot, ..ME }).collect();
    for member in &members {
        hub.subscribe(*member, &[("$share/g/a/+", opts(QoS::AtLeastOnce))]);
    }
    let plain = ConnRef { slot: 9, ..ME };
    let no_local = SubscriptionOptions {
        no_local: true,
        ..opts(QoS::AtMostOnce)
    };
    hub.subscribe(plain, &[("a/#", no_local)]);
    let mut got = [0; 10];
    for _ in 0..30 {
        hub.route("a/b", Some(plain), message, |to, _, _| got[to.slot] += 1);
    }
    assert_eq!(got[..3], [10, 10, 10], "one member per message, in turn");
    assert_eq!(got[9], 0, "no local: not its own messages");
    hub.route("a/b", Some(ME), message, |to, _, _| got[to.slot] += 1);
    assert_eq!(got[9], 1, "others' messages it gets");
    hub.route("b/c", None, message, |_, _, _| panic!("no match"));
    // The same group name on another filter is another shared subscription.
    hub.subscribe(plain, &[("$share/g/a/b", opts(QoS::AtLeastOnce))]);
    let mut copies = 0;
    hub.route("a/b", Some(ME), message, |_, _, _| copies += 1);
    assert_eq!(copies, 3, "one per shared subscription, one for a/#");
}

fn message() -> Arc<Message> {
    Arc::new(Message {
        topic: "a/b".into(),
        payload: Box::new([1]),
        qos: QoS::AtLeastOnce,
        extra: None,
    })
}

#[test]
fn a_stored_session_keeps_subscriptions_and_queues_while_away() {
    let hub = Hub::new(Vec::new());
    let forever = Some(Duration::MAX);
    let first = hub.connect("dev", ME, false, forever);
    assert!(!first.session_present);
    hub.subscribe(ME, &[("a/#", opts(QoS::AtLeastOnce))]);
    let in_flight = Suspended {
        next_packet_id: 42,
        ..Suspended::default()
    };
    let now = Instant::now();
    hub.disconnect("dev", ME, Some(in_flight), forever, now);
    assert!(hub.has_subscribers(), "kept for the stored session");
    let mut online = 0;
    for _ in 0..MAX_OFFLINE_QUEUE + 5 {
        hub.route("a/b", None, message, |_, _, _| online += 1);
    }
    assert_eq!(online, 0);
    let next = ConnRef {
        generation: 8,
        ..ME
    };
    let back = hub.connect("dev", next, false, forever);
    assert!(back.session_present);
    assert_eq!(
        back.queued.len(),
        MAX_OFFLINE_QUEUE,
        "the rest were dropped"
    );
    assert_eq!(back.resumed.map(|s| s.next_packet_id), Some(42));
    let mut seen = Vec::new();
    hub.route("a/b", None, message, |to, _, _| seen.push(to));
    assert_eq!(seen, [next], "subscriptions moved to the new connection");
    // A clean session discards it all.
    hub.disconnect("dev", next, None, None, now);
    let clean = hub.connect("dev", ME, true, None);
    assert!(!clean.session_present && clean.queued.is_empty());
    assert!(!hub.has_subscribers());
}

#[test]
fn a_session_with_an_expiry_is_dropped_when_it_passes() {
    let hub = Hub::new(Vec::new());
    let ten = Some(Duration::from_secs(10));
    hub.connect("v5", ME, true, ten);
    hub.subscribe(ME, &[("a/#", opts(QoS::AtLeastOnce))]);
    let now = Instant::now();
    hub.disconnect("v5", ME, None, ten, now);
    hub.expire_sessions(now + Duration::from_secs(9));
    assert!(hub.has_subscribers(), "not yet");
    hub.expire_sessions(now + Duration::from_secs(10));
    assert!(!hub.has_subscribers(), "expired with its subscriptions");
    assert!(!hub.connect("v5", ME, false, ten).session_present);
}

#[test]
fn retained_store_is_bounded_in_bytes() {
    let hub = Hub::new(Vec::new());
    let sized = |n: usize| {
        move || {
            Arc::new(Message {
                topic: "r".into(),
                payload: vec![1u8; n].into(),
                qos: QoS::AtMostOnce,
                extra: None,
            })
        }
    };
    let half = MAX_RETAINED_BYTES / 2;
    assert!(hub.retain("r/1", false, sized(half)));
    assert!(
        hub.retain("r/1", false, sized(half)),
        "replacing frees the old bytes"
    );
    assert!(hub.retain("r/2", false, sized(half)));
    assert!(!hub.retain("r/3", false, sized(1)), "full");
    assert!(hub.retain("r/2", true, sized(0)), "an empty payload clears");
    assert!(hub.retain("r/3", false, sized(1)));
    assert_eq!(hub.retained_matching("r/#").len(), 2);
}
