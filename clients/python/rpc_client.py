#!/usr/bin/env python3
"""Tutorial 6, RPC client: ask the rpc_queue server for fib(n) and wait.

By default replies come back on an exclusive, server-named callback queue.
With --direct-reply-to they use RabbitMQ's amq.rabbitmq.reply-to pseudo-queue.
"""
import argparse
import sys
import time
import uuid

import pika

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


class FibonacciRpcClient:
    def __init__(self, url, direct_reply_to=False):
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        if direct_reply_to:
            # No queue to declare; consume in no-ack mode from the pseudo-queue.
            self.callback_queue = DIRECT_REPLY_TO
        else:
            result = self.channel.queue_declare(queue="", exclusive=True)
            self.callback_queue = result.method.queue
        self.channel.basic_consume(queue=self.callback_queue,
                                   on_message_callback=self.on_response,
                                   auto_ack=True)
        self.response = None
        self.corr_id = None

    def on_response(self, ch, method, props, body):
        # Replies to earlier (timed-out) calls are ignored.
        if props.correlation_id == self.corr_id:
            self.response = body

    def call(self, n, timeout):
        self.response = None
        self.corr_id = str(uuid.uuid4())
        self.channel.basic_publish(
            exchange="",
            routing_key="rpc_queue",
            properties=pika.BasicProperties(reply_to=self.callback_queue,
                                            correlation_id=self.corr_id),
            body=str(n),
        )
        deadline = time.monotonic() + timeout
        while self.response is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to fib({n}) within {timeout:g}s")
            # Returns as soon as something arrives, or after the time limit.
            self.connection.process_data_events(time_limit=min(remaining, 1.0))
        return int(self.response)

    def close(self):
        self.connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672/",
                        help="AMQP URL of the broker")
    parser.add_argument("--n", type=int, default=30, help="which Fibonacci number (default 30)")
    parser.add_argument("--direct-reply-to", action="store_true",
                        help="receive the reply via amq.rabbitmq.reply-to")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the reply (default 30)")
    args = parser.parse_args()

    client = FibonacciRpcClient(args.url, direct_reply_to=args.direct_reply_to)
    print(f" [x] Requesting fib({args.n})", flush=True)
    try:
        response = client.call(args.n, args.timeout)
    except TimeoutError as exc:
        print(f" [!] {exc}", flush=True)
        sys.exit(1)
    print(f" [.] Got {response}", flush=True)
    client.close()


if __name__ == "__main__":
    main()
