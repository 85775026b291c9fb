"""Decodes the messages an mqload worker sent the way a Locust master does.

Input: a file of messages, each a 4-byte big-endian length and the msgpack bytes.
Every message goes through Locust's own `Message.unserialize`; `stats` messages go
through the master's own `worker_report` listener into a `RequestStats`, whose figures
are printed as JSON for the Rust test to compare. Any mistake raises (exit code 1).
"""

import json
import struct
import sys

from locust.event import Events
from locust.rpc.protocol import Message
from locust.stats import RequestStats, setup_distributed_stats_event_listeners

STATES = {"ready", "spawning", "running", "cleanup", "stopping", "stopped", "missing"}
NIL_DATA = {"spawning", "client_stopped", "quit"}


def read_messages(path):
    data = open(path, "rb").read()
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        yield Message.unserialize(data[pos + 4 : pos + 4 + n])
        pos += 4 + n


def main():
    events = Events()
    stats = RequestStats()
    setup_distributed_stats_event_listeners(events, stats)
    kinds = []
    for msg in read_messages(sys.argv[1]):
        assert isinstance(msg.type, str), msg
        assert isinstance(msg.node_id, str) and "_" in msg.node_id, msg.node_id
        kinds.append(msg.type)
        if msg.type == "client_ready":
            assert msg.data == -1, msg.data
        elif msg.type == "heartbeat":
            assert msg.data["state"] in STATES, msg.data
            assert isinstance(msg.data["current_cpu_usage"], float), msg.data
            assert isinstance(msg.data["current_memory_usage"], int), msg.data
        elif msg.type == "spawning_complete":
            counts = msg.data["user_classes_count"]
            assert all(isinstance(k, str) and isinstance(v, int) for k, v in counts.items())
            assert msg.data["user_count"] == sum(counts.values()), msg.data
        elif msg.type == "exception":
            assert isinstance(msg.data["msg"], str) and isinstance(msg.data["traceback"], str)
        elif msg.type in NIL_DATA:
            assert msg.data is None, msg.data
        elif msg.type == "stats":
            assert isinstance(msg.data["user_classes_count"], dict)
            assert isinstance(msg.data["user_count"], int)
            events.worker_report.fire(client_id=msg.node_id, data=msg.data)
        else:
            raise AssertionError(f"unexpected message type {msg.type!r}")
    entries = {}
    for (name, method), e in stats.entries.items():
        entries[name] = {
            "method": method,
            "num_requests": e.num_requests,
            "num_failures": e.num_failures,
            "num_none_requests": e.num_none_requests,
            "total_response_time": e.total_response_time,
            "min_response_time": e.min_response_time,
            "max_response_time": e.max_response_time,
            "total_content_length": e.total_content_length,
            "bucketed": sum(e.response_times.values()),
            "median": e.median_response_time,
            "avg": e.avg_response_time,
            "per_sec": sum(e.num_reqs_per_sec.values()),
        }
    total = stats.total
    print(
        json.dumps(
            {
                "kinds": kinds,
                "entries": entries,
                "total_requests": total.num_requests,
                "total_failures": total.num_failures,
                "total_p99": total.get_response_time_percentile(0.99),
                "errors": sorted(
                    [e.name, e.method, e.error, e.occurrences] for e in stats.errors.values()
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
