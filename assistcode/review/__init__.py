"""The reviewer queue: fill it from a run, claim and decide items (alone or as a team), and feed the decisions back
as a reviewer coder, adjudicated gold and few-shot examples."""
from .decisions import (REVIEWED, Item, ReviewDecision, claim, decide, describe, find_item, history, open_items, release, reviewer_name,
                        undo)
from .queue import SIGNALS, QueueReport, enqueue
from .team import export_log, merge_log, reviewed_examples, reviewer_agreement, status

__all__ = ["REVIEWED", "Item", "QueueReport", "ReviewDecision", "SIGNALS", "claim", "decide", "describe", "enqueue", "export_log", "find_item",
           "history", "merge_log", "open_items", "release", "reviewed_examples", "reviewer_agreement", "reviewer_name", "status",
           "undo"]
