"""`lavida search`: OUT's videos scored against a description in words, through the scan's job into
OUT/searches/<id>, ranked as events (`search`)."""
