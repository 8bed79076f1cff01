#!/usr/bin/env python3
"""Tutorial 5, publisher: send a log line with a dotted routing key to topic_logs.

    emit_log_topic.py [routing.key] [message...]      e.g. kern.critical "disk full"
"""
import argparse

import pika


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672/",
                        help="AMQP URL of the broker")
    parser.add_argument("routing_key", nargs="?", default="anonymous.info",
                        help="<facility>.<severity> (default anonymous.info)")
    parser.add_argument("message", nargs="*", help="log line (default: Hello World!)")
    args = parser.parse_args()
    body = " ".join(args.message) or "Hello World!"

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.exchange_declare(exchange="topic_logs", exchange_type="topic")
    channel.basic_publish(exchange="topic_logs", routing_key=args.routing_key, body=body)
    print(f" [x] Sent {args.routing_key}:{body}", flush=True)
    connection.close()


if __name__ == "__main__":
    main()
