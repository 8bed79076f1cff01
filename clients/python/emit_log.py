#!/usr/bin/env python3
"""Tutorial 3, publisher: broadcast a log line on the fanout exchange logs."""
import argparse

import pika


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672/",
                        help="AMQP URL of the broker")
    parser.add_argument("message", nargs="*", help="log line (default: info: Hello World!)")
    args = parser.parse_args()
    body = " ".join(args.message) or "info: Hello World!"

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.exchange_declare(exchange="logs", exchange_type="fanout")
    # A fanout exchange ignores the routing key.
    channel.basic_publish(exchange="logs", routing_key="", body=body)
    print(f" [x] Sent {body}", flush=True)
    connection.close()


if __name__ == "__main__":
    main()
