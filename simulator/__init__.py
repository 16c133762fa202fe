"""The program under Pulumi mocks, and the engine's play of a change.

`program` runs `__main__.py` under mocks and records every resource (the lab, the benchmarks and the tests use it);
`change_sim` plays a setting change the way `pulumi up` would; `aws_replay` replays AWS operations into moto."""
