//! Start-up recovery of the HL7 session store from interrupted writes and damaged
//! files. (Filled by the recovery issue.)
#![warn(missing_docs)]
