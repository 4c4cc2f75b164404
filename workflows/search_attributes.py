"""Typed search-attribute keys (their names are declared in ``authflow.policies``)."""

from temporalio.common import SearchAttributeKey

KIND = SearchAttributeKey.for_keyword("AuthflowKind")
DELIVERY_STATE = SearchAttributeKey.for_keyword("AuthflowDeliveryState")
USER_ID = SearchAttributeKey.for_keyword("AuthflowUserId")
COURSE_ID = SearchAttributeKey.for_keyword("AuthflowCourseId")
