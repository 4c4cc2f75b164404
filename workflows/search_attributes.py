"""Typed search-attribute keys (their names are declared in ``authflow.policies``)."""

from temporalio.common import SearchAttributeKey

from authflow.policies import SA_COURSE_ID, SA_DELIVERY_STATE, SA_KIND, SA_USER_ID

KIND = SearchAttributeKey.for_keyword(SA_KIND)
DELIVERY_STATE = SearchAttributeKey.for_keyword(SA_DELIVERY_STATE)
USER_ID = SearchAttributeKey.for_keyword(SA_USER_ID)
COURSE_ID = SearchAttributeKey.for_keyword(SA_COURSE_ID)
