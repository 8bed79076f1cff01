#!/usr/bin/env python3
"""Tutorial 1, producer: put one "Hello World!" on the queue named hello."""
import argparse

import pika


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672/",
                        help="AMQP URL of the broker")
    parser.add_argument("message", nargs="*", help="body to send (default: Hello World!)")
    args = parser.parse_args()
    body = " ".join(args.message) or "Hello World!"

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.queue_declare(queue="hello")

    # The default exchange routes by queue name.
    channel.basic_publish(exchange="", routing_key="hello", body=body)
    print(f" [x] Sent '{body}'", flush=True)
    connection.close()


if __name__ == "__main__":
    main()
