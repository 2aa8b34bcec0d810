"""The predictor service: one replica of the scaled serving layout (``streamml up --predictors N``).

Replicas share one consumer group over ``features``; each predicts every event of its partitions
with the newest model release of the learner (``model-releases``) and writes, in one Kafka
transaction with its input offsets, the champion's prediction to ``predictions`` and what it
served to ``prediction-log`` (for the learner). A replica that dies hands its partitions to the
others; its open transaction is aborted, so every event still has exactly one prediction.
"""
