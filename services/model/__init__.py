"""The model service (River): predicts on every feature vector, learns when the label arrives."""
