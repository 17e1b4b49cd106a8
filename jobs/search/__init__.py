"""`lavida search` and `lavida index`: forensic search by a description in words. `index` back-fills
the clip embeddings a scan writes; `retrieve` finds the clips nearest the description in them;
`search` has LAVIDA re-score those clips through the scan's job into OUT/searches/<id>, ranked as
events (or every clip of every candidate, `--exhaustive`)."""
