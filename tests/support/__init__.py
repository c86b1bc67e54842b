"""Test helpers and fakes: real processes and servers on 127.0.0.1 that the tests drive."""
