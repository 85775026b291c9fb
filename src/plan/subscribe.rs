//! Subscribers of a run: their options checked, their filter encoded, their plan and rows.

use super::error::PlanError;
use crate::cli::Cli;
use crate::mqtt::{self, QoS};
use crate::stats::RequestKind;

/// Subscriber connections of a run (`--subscribers`, `--subscribe-topic`, `--subscribe-qos`).
#[derive(Debug, Clone)]
pub struct SubscribePlan {
    /// How many; subscriber `j` takes user index `users + j` in the client id template.
    pub subscribers: u64,
    /// Topic filter each subscribes to (`{run_id}` substituted).
    pub filter: String,
    /// Requested QoS.
    pub qos: QoS,
    /// Row of `subscribe:<qos>:<filter>` (SUBACK time, refusals) in `request_names`.
    pub subscribe_name: usize,
    /// Row of `receive:<qos>:<filter>` (due time to arrival) in `request_names`.
    pub receive_name: usize,
    /// SUBSCRIBE options (MQTT 5 no local, retain as published, retain handling).
    pub options: mqtt::v5::SubscriptionOptions,
}

/// Checks the subscriber options; `None` when there are no subscribers.
pub(super) fn subscribe_options(cli: &Cli) -> Result<Option<(u64, String, QoS)>, PlanError> {
    let filter = match (cli.subscribers, &cli.subscribe_topic) {
        (0, None) => return Ok(None),
        (subscribers, None) | (subscribers @ 0, Some(_)) => {
            return Err(PlanError::SubscribeIncomplete { subscribers });
        }
        (_, Some(filter)) => filter.clone(),
    };
    if cli.worker {
        return Err(PlanError::SubscribersInWorker);
    }
    let qos =
        QoS::from_u8(cli.subscribe_qos).ok_or(PlanError::BadSubscribeQos(cli.subscribe_qos))?;
    Ok(Some((cli.subscribers, filter, qos)))
}

/// The filter with `{run_id}` substituted, checked by encoding its SUBSCRIBE.
fn subscribe_filter(template: &str, run_id: &str, qos: QoS) -> Result<String, PlanError> {
    let filter = template.replace("{run_id}", run_id);
    mqtt::Packet::Subscribe {
        packet_id: 1,
        filters: vec![(filter.as_str(), qos)],
    }
    .encode(&mut Vec::new())
    .map_err(|e| PlanError::BadSubscribeFilter {
        filter: filter.clone(),
        reason: e.to_string(),
    })?;
    if !mqtt::topic::is_valid_filter(&filter) {
        return Err(PlanError::BadSubscribeFilter {
            reason: "a shared subscription is $share/GROUP/FILTER".into(),
            filter,
        });
    }
    Ok(filter)
}

/// The subscribers' plan from the checked `(subscribers, filter template, qos)`; adds their
/// two rows to `request_names`.
pub(super) fn subscribe_plan(
    cli: &Cli,
    (subscribers, template, qos): (u64, String, QoS),
    run_id: &str,
    request_names: &mut Vec<String>,
) -> Result<SubscribePlan, PlanError> {
    let filter = subscribe_filter(&template, run_id, qos)?;
    let options = cli.mqtt5.subscription_options(&filter, qos);
    let options = options.map_err(PlanError::Mqtt5)?;
    let subscribe_name = request_names.len();
    request_names.push(RequestKind::Subscribe.row_name(qos, &template));
    request_names.push(RequestKind::Receive.row_name(qos, &template));
    Ok(SubscribePlan {
        subscribers,
        filter,
        qos,
        subscribe_name,
        receive_name: subscribe_name + 1,
        options,
    })
}
