"""``streamml topics create|list``: the catalogue's topics on the configured cluster.

``create`` makes the missing topics with the replication the cluster can carry (up to 3 replicas,
``min.insync.replicas`` one less) unless flags or ``STREAMML_TOPICS__*`` say otherwise, prints
how each was created, and reports existing topics that are weaker than that. ``streamml up``
does the same before it starts the services.
"""

from __future__ import annotations

import argparse

from services.common.kafka import make_admin, provision_topics
from services.common.settings import Settings, TopicSettings
from services.common.topic_admin import TopicReport, existing_topics


def add_topics_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``topics`` command's arguments."""
    parser.add_argument("action", choices=["create", "list"])
    parser.add_argument("--replication-factor", type=int, metavar="N",
                        help="replicas per partition (default: the brokers, up to 3)")
    parser.add_argument("--min-insync-replicas", type=int, metavar="N",
                        help="replicas that acknowledge a write (default: replication - 1, "
                             "at least 1)")
    parser.add_argument("--partitions", type=int, metavar="N",
                        help="partitions of the keyed pipeline topics (default: 4)")


def topic_settings(settings: Settings, args: argparse.Namespace | None = None) -> TopicSettings:
    """``settings.topics`` with the flags given in ``args`` on top."""
    flags = {name: getattr(args, name, None) for name in
             ("replication_factor", "min_insync_replicas", "partitions")}
    return TopicSettings.model_validate({**settings.topics.model_dump(),
                                         **{k: v for k, v in flags.items() if v is not None}})


def create_topics(settings: Settings, args: argparse.Namespace | None = None) -> TopicReport:
    """Create the catalogue's missing topics and print what was created and what is weaker."""
    report = provision_topics(settings.kafka, settings.topic_prefix,
                              topics=topic_settings(settings, args))
    for line in report.lines():
        print(line)
    return report


def run_topics_command(args: argparse.Namespace) -> int:
    """``create`` or ``list``; 0 when done."""
    settings = Settings()
    if args.action == "create":
        report = create_topics(settings, args)
        if not report.created:
            print("created no topic: all existed")
        return 0
    admin = make_admin(settings.kafka)
    names = sorted(admin.list_topics(timeout=10).topics)
    for name, topic in existing_topics(admin, names).items():
        print(f"{name}\t{topic.partitions} partitions\treplication factor "
              f"{topic.replication_factor}\tmin.insync.replicas "
              f"{topic.config.get('min.insync.replicas', '?')}")
    return 0
