"""MQTT-like requests for the CSV comparison: MQTT 3.1.1 over a plain socket (paho-mqtt is
not in the pinned venv), timed as mqload times them: connect until CONNACK, publish QoS 1
until PUBACK, disconnect 0. Each is recorded through Locust's request event."""
import os
import random
import socket
import string
import struct
import time

from locust import User, constant_throughput, task

PORT = int(os.environ["MQLOAD_TEST_MQTT_PORT"])
TOPIC = "locust/test/topic"
PAYLOAD = os.urandom(132)


def remaining_length(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first_byte, body):
    return bytes([first_byte]) + remaining_length(len(body)) + body


def utf8(text):
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data


def read_packet(sock):
    first = recv_exact(sock, 1)[0]
    length, multiplier = 0, 1
    while True:
        byte = recv_exact(sock, 1)[0]
        length += (byte & 127) * multiplier
        multiplier *= 128
        if not byte & 128:
            return first, recv_exact(sock, length)


class MqttLikeUser(User):
    wait_time = constant_throughput(5)

    def record(self, name, response_time, length=0, exception=None):
        self.environment.events.request.fire(
            request_type="MQTT",
            name=name,
            response_time=response_time,
            response_length=length,
            exception=exception,
            context={},
        )

    def on_start(self):
        self.packet_id = 0
        client_id = "locust-" + "".join(random.choices(string.ascii_letters + string.digits, k=16))
        started = time.perf_counter()
        self.sock = socket.create_connection(("127.0.0.1", PORT))
        self.sock.sendall(packet(0x10, utf8("MQTT") + bytes([4, 2]) + struct.pack("!H", 60) + utf8(client_id)))
        first, body = read_packet(self.sock)
        ok = first == 0x20 and len(body) == 2 and body[1] == 0
        self.record("connect", (time.perf_counter() - started) * 1000,
                    exception=None if ok else ConnectionError(f"CONNACK {body!r}"))

    @task
    def publish(self):
        self.packet_id = self.packet_id % 65535 + 1
        started = time.perf_counter()
        self.sock.sendall(packet(0x32, utf8(TOPIC) + struct.pack("!H", self.packet_id) + PAYLOAD))
        first, body = read_packet(self.sock)
        ok = first == 0x40 and body == struct.pack("!H", self.packet_id)
        self.record("publish:1:" + TOPIC, (time.perf_counter() - started) * 1000, len(PAYLOAD),
                    None if ok else ConnectionError(f"expected PUBACK, got {first:#x}"))

    def on_stop(self):
        self.sock.sendall(b"\xe0\x00")
        self.sock.close()
        self.record("disconnect", 0)
