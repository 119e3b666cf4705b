"""Applications built on the flows, free of IO like the core: the simulated charging
station (``simulator``) and the demo central system (``demo_csms``). The ``ocpp-sansio``
command puts them on sockets through the adapters."""
