"""The Kaggle "Medical Appointment No Shows" schema: the single source of truth for column names.

Column names keep the original spelling (``Hipertension``, ``Handcap``, ``No-show``). In
``No-show``, "Yes" means the patient did NOT attend, which is the positive class (label 1).
"""

PATIENT_ID = "PatientId"
APPOINTMENT_ID = "AppointmentID"
GENDER = "Gender"
SCHEDULED_DAY = "ScheduledDay"
APPOINTMENT_DAY = "AppointmentDay"
AGE = "Age"
NEIGHBOURHOOD = "Neighbourhood"
SMS_RECEIVED = "SMS_received"
SCHOLARSHIP = "Scholarship"
HANDICAP = "Handcap"
LABEL = "No-show"

# 0/1 columns, in file order.
CONDITION_FLAGS = (SCHOLARSHIP, "Hipertension", "Diabetes", "Alcoholism")
FLAG_COLUMNS = (*CONDITION_FLAGS, SMS_RECEIVED)

# Every column a file must have to be scored (the label is needed only to train or evaluate).
FEATURE_COLUMNS = (
    PATIENT_ID,
    APPOINTMENT_ID,
    GENDER,
    SCHEDULED_DAY,
    APPOINTMENT_DAY,
    AGE,
    NEIGHBOURHOOD,
    *CONDITION_FLAGS,
    HANDICAP,
    SMS_RECEIVED,
)
ALL_COLUMNS = (*FEATURE_COLUMNS, LABEL)

GENDER_VALUES = ("F", "M")
LABEL_VALUES = {"No": 0, "Yes": 1}
HANDICAP_MAX = 4

# The datetime format of ScheduledDay and AppointmentDay (UTC, ISO 8601 with a trailing Z).
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# Extra column written by `noshow synth`: the true no-show probability of each row. Loaders ignore it
# for training; reports use it for the Bayes-limit row.
TRUE_PROBABILITY = "true_probability"

# Columns added by the loader to the cleaned frame (derived once, used by features and splits).
PATIENT_KEY = "patient_key"
SCHEDULED_DATE = "scheduled_date"
APPOINTMENT_DATE = "appointment_date"
TARGET = "target"
