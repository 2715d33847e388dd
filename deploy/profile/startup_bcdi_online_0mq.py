"""IPython/bluesky profile snippet: publish documents to ``bcdi-online serve`` over 0MQ.

Copy to ``~/.ipython/profile_<beamline>/startup/90-bcdi_online_0mq.py``. Documents are
packed with msgpack (numpy arrays in ``msgpack_numpy``'s layout), never pickled: the
consumer only decodes plain numbers, strings and numeric arrays, so whoever reaches the
proxy cannot run code in it. Without bcdi-online installed on the acquisition machine,
``functools.partial(msgpack.packb, default=msgpack_numpy.encode)`` packs the same way.
With ``$BCDI_ONLINE_QUEUE`` set (several processors), each run is first announced on
that Redis queue (subscribe TiledWriter before this file runs: the processors take over
a run from what Tiled keeps).
"""

from bluesky.callbacks.zmq import Publisher

from bcdi_online import ServiceSettings
from bcdi_online.callbacks import RunAnnouncer, msgpack_serializer

bcdi_settings = ServiceSettings.load()
if bcdi_settings.queue:  # several processors share the runs: announce each one first
    RE.subscribe(  # noqa: F821 - RE comes from the beamline profile
        RunAnnouncer.from_url(bcdi_settings.queue, stream=bcdi_settings.queue_stream)
    )
bcdi_publisher = Publisher(
    bcdi_settings.zmq_in,  # the proxy's IN address ($BCDI_ONLINE_ZMQ_IN)
    serializer=msgpack_serializer,
)
RE.subscribe(bcdi_publisher)  # noqa: F821 - RE comes from the beamline profile
