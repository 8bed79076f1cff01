#!/usr/bin/env python3
"""Tutorial 2, producer: queue a task on the durable task_queue.

Each '.' in the message stands for one second of work for the worker.
"""
import argparse

import pika


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672/",
                        help="AMQP URL of the broker")
    parser.add_argument("message", nargs="*", help="task body (default: Hello World!)")
    args = parser.parse_args()
    body = " ".join(args.message) or "Hello World!"

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    # Durable queue + persistent message: the task outlives a broker restart.
    channel.queue_declare(queue="task_queue", durable=True)
    channel.basic_publish(
        exchange="",
        routing_key="task_queue",
        body=body,
        properties=pika.BasicProperties(delivery_mode=2),  # 2 = persistent
    )
    print(f" [x] Sent {body}", flush=True)
    connection.close()


if __name__ == "__main__":
    main()
