"""The demo shop's own tables (accounts, sign-ins): their metadata, created and dropped
together with the connector's store, so that ``flask psp init-db`` makes them too."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, MetaData, event

from flask_psp_connector.platforms.embedded.schema import Base as StoreBase

#: The metadata every table of the shop is defined on.
shop_metadata = MetaData()


@event.listens_for(StoreBase.metadata, "after_create")
def _create_with_store(_target: Any, connection: Connection, **_kw: Any) -> None:
    shop_metadata.create_all(connection)


@event.listens_for(StoreBase.metadata, "before_drop")
def _drop_with_store(_target: Any, connection: Connection, **_kw: Any) -> None:
    shop_metadata.drop_all(connection)
