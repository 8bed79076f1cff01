#!/usr/bin/env python3
"""Tutorial 5, subscriber: print log lines whose key matches a pattern.

    receive_logs_topic.py [--count N] binding_key [binding_key...]

'*' matches exactly one word, '#' matches zero or more words:
"kern.*", "*.critical", "#".
"""
import argparse
import sys

import pika


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672/",
                        help="AMQP URL of the broker")
    parser.add_argument("--count", type=int, default=0,
                        help="exit after this many messages (0 = run forever)")
    parser.add_argument("binding_keys", nargs="+", metavar="binding_key",
                        help="topic patterns to bind with")
    args = parser.parse_args()

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.exchange_declare(exchange="topic_logs", exchange_type="topic")

    result = channel.queue_declare(queue="", exclusive=True)
    queue_name = result.method.queue
    for binding_key in args.binding_keys:
        channel.queue_bind(exchange="topic_logs", queue=queue_name, routing_key=binding_key)

    received = 0

    def on_log(ch, method, properties, body):
        nonlocal received
        print(f" [x] {method.routing_key}:{body.decode()}", flush=True)
        received += 1
        if args.count and received >= args.count:
            ch.stop_consuming()

    channel.basic_consume(queue=queue_name, on_message_callback=on_log, auto_ack=True)
    print(" [*] Waiting for logs. To exit press CTRL+C", flush=True)
    channel.start_consuming()
    connection.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("Interrupted", flush=True)
        sys.exit(0)
