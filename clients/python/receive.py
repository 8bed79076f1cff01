#!/usr/bin/env python3
"""Tutorial 1, consumer: print whatever arrives on the queue named hello."""
import argparse
import sys

import pika


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672/",
                        help="AMQP URL of the broker")
    parser.add_argument("--count", type=int, default=0,
                        help="exit after this many messages (0 = run forever)")
    args = parser.parse_args()

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    # Declaring is idempotent; do it here too in case the consumer starts first.
    channel.queue_declare(queue="hello")

    received = 0

    def on_message(ch, method, properties, body):
        nonlocal received
        print(f" [x] Received {body.decode()}", flush=True)
        received += 1
        if args.count and received >= args.count:
            ch.stop_consuming()

    channel.basic_consume(queue="hello", on_message_callback=on_message, auto_ack=True)
    print(" [*] Waiting for messages. To exit press CTRL+C", flush=True)
    channel.start_consuming()
    connection.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("Interrupted", flush=True)
        sys.exit(0)
