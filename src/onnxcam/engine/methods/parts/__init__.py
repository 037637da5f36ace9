"""What several methods share, so that no method imports another: channel selection, masked
inputs and their scoring, gradients and relevance seeded at the class scores, activation edits
on the graph's tail."""
