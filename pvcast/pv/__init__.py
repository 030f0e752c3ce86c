"""The PV plant kind: the plant model (``plant``), its physics (``physics``) and the tensor builder
(``features``). Another plant kind (wind farms, load zones) gets its own package beside this one."""
