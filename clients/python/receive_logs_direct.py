#!/usr/bin/env python3
"""Tutorial 4, subscriber: print log lines of the chosen severities.

    receive_logs_direct.py [--count N] severity [severity...]
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
    parser.add_argument("severities", nargs="+", metavar="severity",
                        help="binding keys, e.g. info warning error")
    args = parser.parse_args()

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.exchange_declare(exchange="direct_logs", exchange_type="direct")

    result = channel.queue_declare(queue="", exclusive=True)
    queue_name = result.method.queue
    # One binding per severity: the queue gets the union.
    for severity in args.severities:
        channel.queue_bind(exchange="direct_logs", queue=queue_name, routing_key=severity)

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
