#!/usr/bin/env python3
"""Tutorial 4, publisher: send a log line with a severity to direct_logs.

    emit_log_direct.py [severity] [message...]
"""
import argparse

import pika


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672/",
                        help="AMQP URL of the broker")
    parser.add_argument("severity", nargs="?", default="info",
                        help="routing key, e.g. info, warning, error (default info)")
    parser.add_argument("message", nargs="*", help="log line (default: Hello World!)")
    args = parser.parse_args()
    body = " ".join(args.message) or "Hello World!"

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.exchange_declare(exchange="direct_logs", exchange_type="direct")
    channel.basic_publish(exchange="direct_logs", routing_key=args.severity, body=body)
    print(f" [x] Sent {args.severity}:{body}", flush=True)
    connection.close()


if __name__ == "__main__":
    main()
