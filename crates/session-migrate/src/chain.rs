//! The version chain: one macro that turns an ordered list of version types into a
//! decoder, so that adding a version is one line.

/// Declares a decoder for a chain of document versions, oldest first, current last.
///
/// The first type must be the app's `1.0.0` ([`SessionV1`](session_model::SessionV1)),
/// which legacy files upgrade into; each later type must implement [`Version`](crate::Version)
/// and `From` or `TryFrom` the type before it. The generated function reads
/// `_metadata.version`, deserializes exactly that version and upgrades it step by step
/// to the last type.
///
/// ```
/// use session_model::{Session, SessionV1, SessionV2_0};
///
/// session_migrate::schema_chain! {
///     /// Decodes into the current version.
///     fn decode_current -> Session { SessionV1, SessionV2_0, Session }
/// }
/// let chained = decode_current(br#"{"id": "s", "startTime": 1}"#, &Default::default()).unwrap();
/// assert_eq!(chained.from.as_str(), "legacy");
/// ```
#[macro_export]
macro_rules! schema_chain {
    // A schema: a unit struct implementing `Schema`, for a `SessionStore` of its own.
    ($(#[$meta:meta])* $vis:vis struct $name:ident -> $current:ty { $($chain:ty),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default)]
        $vis struct $name;

        impl $crate::Schema for $name {
            type Document = $current;
            fn decode_chain(
                bytes: &[u8],
                options: &$crate::DecodeOptions,
            ) -> ::core::result::Result<$crate::Chained<$current>, $crate::DecodeError> {
                $crate::schema_chain! { fn chain -> $current { $($chain),+ } }
                chain(bytes, options)
            }
        }
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident -> $current:ty { $first:ty $(, $rest:ty)* $(,)? }) => {
        $(#[$meta])*
        $vis fn $name(
            bytes: &[u8],
            options: &$crate::DecodeOptions,
        ) -> ::core::result::Result<$crate::Chained<$current>, $crate::DecodeError> {
            if let ::core::option::Option::Some(session) = $crate::__private::confirmed::<$current>(bytes) {
                return ::core::result::Result::Ok($crate::Chained {
                    session,
                    from: <$current as $crate::Version>::SCHEMA,
                });
            }
            let declared = match $crate::__private::declared(bytes)? {
                ::core::option::Option::None => {
                    let from = $crate::SchemaVersion::LEGACY;
                    let first: $first = $crate::__private::legacy(bytes, options)?;
                    return ::core::result::Result::Ok($crate::Chained {
                        session: $crate::__upgrade!(first, from; $($rest),*),
                        from,
                    });
                }
                ::core::option::Option::Some(declared) => declared,
            };
            $crate::__arms!(declared, bytes; $first $(, $rest)*);
            ::core::result::Result::Err($crate::__private::newer(declared, bytes))
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __upgrade {
    ($value:expr, $from:expr;) => { $value };
    ($value:expr, $from:expr; $next:ty $(, $rest:ty)*) => {
        $crate::__upgrade!(
            <$next as ::core::convert::TryFrom<_>>::try_from($value)
                .map_err(|e| $crate::DecodeError::upgrade($from, e))?,
            $from; $($rest),*
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __arms {
    ($declared:ident, $bytes:ident;) => {};
    ($declared:ident, $bytes:ident; $head:ty $(, $rest:ty)*) => {
        if $declared.as_str() == <$head as $crate::Version>::NAME {
            let from = <$head as $crate::Version>::SCHEMA;
            let parsed: $head = $crate::__private::parse($bytes, from)?;
            return ::core::result::Result::Ok($crate::Chained {
                session: $crate::__upgrade!(parsed, from; $($rest),*),
                from,
            });
        }
        $crate::__arms!($declared, $bytes; $($rest),*);
    };
}
