"""`lavida scan` by stage: list an archive (`listing`), plan and decode clips (`decode`), run LAVIDA on
an actor pool (`detect`), commit to OUT (`write`); `job` drives them on Ray (`ray_session` connects),
`options` holds the defaults. `detect_clip` is `lavida detect`: one clip of one video, no Ray."""
