#!/usr/bin/env python3
"""Tutorial 2, worker: take tasks from task_queue one at a time.

It sleeps one second per '.' in the body and acknowledges only when done,
so a task held by a worker that dies goes to another worker.
"""
import argparse
import sys
import time

import pika


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672/",
                        help="AMQP URL of the broker")
    parser.add_argument("--dot-seconds", type=float, default=1.0,
                        help="seconds of work per '.' in a task (default 1)")
    parser.add_argument("--count", type=int, default=0,
                        help="exit after this many tasks (0 = run forever)")
    args = parser.parse_args()

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.queue_declare(queue="task_queue", durable=True)
    # Do not hand this worker a new task until it has acked the last one.
    channel.basic_qos(prefetch_count=1)

    done = 0

    def on_task(ch, method, properties, body):
        nonlocal done
        text = body.decode()
        print(f" [x] Received {text}", flush=True)
        time.sleep(text.count(".") * args.dot_seconds)
        print(" [x] Done", flush=True)
        ch.basic_ack(delivery_tag=method.delivery_tag)
        done += 1
        if args.count and done >= args.count:
            ch.stop_consuming()

    channel.basic_consume(queue="task_queue", on_message_callback=on_task)
    print(" [*] Waiting for messages. To exit press CTRL+C", flush=True)
    channel.start_consuming()
    connection.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("Interrupted", flush=True)
        sys.exit(0)
