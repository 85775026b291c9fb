"""Locustfile for a Locust master that drives mqload workers (`mqload --worker`).

The master needs user classes to count and to spread over its workers; mqload's engine
runs them: `MqttPublisher` users are one MQTT connection each, publishing at a constant
rate; `MqttSubscriber` users are one connection each, subscribed to --mqtt-subscribe-topic,
timing every message of the run end to end (rows `subscribe:<qos>:<filter>` and
`receive:<qos>:<filter>`). The tasks below never run on mqload workers. Start the master
with, for example:

    locust -f deploy/locustfile.py --master --headless --expect-workers 2 \
        -u 100 -r 50 -t 1m --mqtt-host broker.example --mqtt-qos 1 --csv run

and, to add subscribers, say how many of the -u users subscribe and to what (they are
spawned first; give every worker the same --mqtt-run-id, or a subscriber ignores other
workers' messages as foreign):

    locust -f deploy/locustfile.py --master --headless --expect-workers 2 \
        -u 102 -r 102 -t 1m --mqtt-host broker.example --mqtt-run-id r1 \
        --mqtt-subscribers 2 --mqtt-subscribe-topic 'locust/#' --mqtt-subscribe-qos 1

One worker cannot see what publishers on another worker sent, so the workers report no
lost or duplicated counts to the master: compare the `receive:` count with subscribers x
messages the broker received on the filter's topics (or run a standalone
`mqload -u 0 --subscribers N` beside them, which does count losses).

Options given here are forwarded to every worker in the spawn message (Locust's
`parsed_options`); an option given on a worker's own command line or in its environment
wins over the master's. Options left unset here keep the worker's own value or default.

This file is for the master only: a plain Python `locust --worker` would run the
placeholder task, which records a failure that says so instead of sending MQTT.
"""

import time

from locust import User, constant, events, task


@events.init_command_line_parser.add_listener
def mqtt_options(parser):
    group = parser.add_argument_group("MQTT (forwarded to mqload workers)")
    group.add_argument("--mqtt-host", type=str, default=None, help="broker host")
    group.add_argument("--mqtt-port", type=int, default=None, help="broker port")
    group.add_argument("--mqtt-topic", type=str, default=None,
                       help="topic template ({i} user index, {run_id}, {client_id})")
    group.add_argument("--mqtt-qos", type=int, default=None, help="0, 1 or 2")
    group.add_argument("--mqtt-payload-kb", type=int, default=None,
                       help="KiB of random data per message")
    group.add_argument("--mqtt-payload-bytes", type=int, default=None,
                       help="random bytes per message (overrides --mqtt-payload-kb)")
    group.add_argument("--mqtt-payload-format", type=str, default=None,
                       choices=["json", "raw"], help="message body format")
    group.add_argument("--mqtt-throughput", type=float, default=None,
                       help="messages per second per user")
    group.add_argument("--mqtt-run-id", type=str, default=None,
                       help="run id written into every message")
    group.add_argument("--mqtt-no-tls", type=str, default=None,
                       help="true: plain TCP instead of TLS")
    group.add_argument("--mqtt-subscribers", type=int, default=0,
                       help="how many of the users are MqttSubscriber (the rest publish)")
    group.add_argument("--mqtt-subscribe-topic", type=str, default=None,
                       help="topic filter MqttSubscriber users subscribe to ({run_id})")
    group.add_argument("--mqtt-subscribe-qos", type=int, default=None,
                       help="QoS MqttSubscriber users ask for: 0, 1 or 2")


@events.init.add_listener
def subscriber_count(environment, **_kwargs):
    options = environment.parsed_options
    if options is not None and options.mqtt_subscribers > 0:
        # Locust dropped the weight-0 class before this event: put it back, at a fixed count.
        MqttSubscriber.fixed_count = options.mqtt_subscribers
        if MqttSubscriber not in environment.user_classes:
            environment.user_classes.append(MqttSubscriber)


def _python_worker_failure(user, name):
    user.environment.events.request.fire(
        request_type="MQTT",
        name=name,
        response_time=0,
        response_length=0,
        exception=RuntimeError("this locustfile is for mqload workers: run `mqload --worker`"),
        start_time=time.time(),
    )


class MqttPublisher(User):
    """One device publishing at a constant rate (run by mqload workers)."""

    wait_time = constant(1)

    @task
    def publish(self):
        _python_worker_failure(self, "publish (python worker)")


class MqttSubscriber(User):
    """One device subscribed to --mqtt-subscribe-topic (run by mqload workers).

    Weight 0: none unless --mqtt-subscribers sets a fixed count.
    """

    weight = 0

    wait_time = constant(1)

    @task
    def receive(self):
        _python_worker_failure(self, "receive (python worker)")
