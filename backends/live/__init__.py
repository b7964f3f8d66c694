"""The live world: the controller daemon (`controller`), the agent worker (`worker`), and a local stack of both on
one machine (`devstack`). The wire they share is `backends.protocol`."""
