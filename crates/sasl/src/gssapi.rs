//! The GSSAPI SASL mechanism (RFC 4752) over Kerberos V5, server side, authentication only, as
//! ZooKeeper's JDK server (`com.sun.security.sasl.gsskerb.GssKrb5Server`) speaks it.
//!
//! The exchange for one connection:
//! 1. The client sends its initial context token (a Kerberos AP-REQ). The server accepts it
//!    through the system's GSS-API library and answers with the acceptor's token (the AP-REP when
//!    the client asked for mutual authentication) until the context is established.
//! 2. If the step that established the context produced a token, the client answers it with an
//!    empty message; otherwise the server goes on to 3 at once (both as the JDK does).
//! 3. The server sends a wrapped 4-octet offer: the security layers it supports (only `0x01`,
//!    none) and, big-endian in 3 octets, the largest message it could receive in a layer (65536,
//!    the JDK's default, which is what a ZooKeeper server sends).
//! 4. The client answers with a wrapped message: the layer it chose (must be none), its own
//!    maximum size (ignored, there is no layer) and optionally an authorization id in UTF-8, which
//!    must be the authenticated principal itself. ZooKeeper lets its callback handler decide and
//!    authorizes any id; Roost takes the identity only from what Kerberos authenticated.
//! 5. The client is authenticated as the context's source name (`client@REALM`). ZooKeeper's
//!    final reply carries no token.
//!
//! Credentials come from the key table named in the JAAS `Server` section (`keyTab`), through
//! MIT's credential store extension (`gss_acquire_cred_from`), so nothing process-wide such as
//! `KRB5_KTNAME` is set, and they are bound to the configured principal: a ticket for any other
//! service is refused, even one whose key is in the same key table. The key table is read again
//! on every accepted context (MIT behaviour), so a rotated key table takes effect without a
//! restart.

use std::ffi::{c_void, CString};
use std::fmt;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::ptr;

use libgssapi::context::{CtxFlags, SecurityContext as _, ServerCtx};
use libgssapi::credential::Cred;
use libgssapi::error::{Error as GssError, MajorFlags};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_KRB5_PRINCIPAL};
use libgssapi_sys::{
    gss_OID_desc, gss_OID_set_desc, gss_acquire_cred_from, gss_buffer_desc, gss_cred_id_t, gss_cred_usage_t,
    gss_import_name, gss_key_value_element_desc, gss_key_value_set_desc, gss_name_t, gss_release_name, OM_uint32,
    _GSS_C_INDEFINITE, GSS_C_ACCEPT,
};

use crate::error::SaslError;
use crate::kerberos::MAX_PRINCIPAL_LEN;
use crate::Step;

/// The largest token the server accepts from a client. An AP-REQ carrying a large authorization
/// data (a Windows PAC with many groups) can reach tens of kilobytes; this leaves room for that and
/// bounds what a hostile client can make the GSS-API library parse.
pub const MAX_GSSAPI_TOKEN_LEN: usize = 64 * 1024;

/// Context tokens accepted before giving up. Kerberos V5 needs one (two with the JDK's
/// ordering); the cap only stops a mechanism or a peer that never finishes.
const MAX_CONTEXT_ROUNDS: u8 = 4;

/// RFC 4752 security layer bit: no security layer.
const LAYER_NONE: u8 = 0x01;

/// The maximum receive size the server announces, as the JDK does by default
/// (`javax.security.sasl.maxbuffer`).
const SERVER_MAX_BUFFER: u32 = 65536;

/// OID 1.2.840.113554.1.2.2.1, GSS_KRB5_NT_PRINCIPAL_NAME: a name in `primary/instance@REALM` form.
const KRB5_NT_PRINCIPAL_NAME: [u8; 10] = *b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";

/// OID 1.2.840.113554.1.2.2, the Kerberos V5 mechanism.
const KRB5_MECHANISM: [u8; 9] = *b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02";

/// GSS-API major status bits that mean failure (calling and routine errors); the low 16 bits are
/// supplementary information.
const GSS_ERROR_MASK: OM_uint32 = 0xffff_0000;

fn gss_failure(what: &str, e: GssError) -> SaslError {
    SaslError::Gssapi(format!("{what}: {e}"))
}

fn gss_status(what: &str, major: OM_uint32, minor: OM_uint32) -> SaslError {
    gss_failure(what, GssError { major: MajorFlags::from_bits_retain(major), minor })
}

/// Acceptor credentials for one service principal: acquire them once from the key table and
/// share them (cloning is cheap) between the connections' [`GssapiServer`]s.
#[derive(Clone)]
pub struct GssapiCredentials {
    principal: String,
    cred: Cred,
}

/// Names the principal only.
impl fmt::Debug for GssapiCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GssapiCredentials").field("principal", &self.principal).finish_non_exhaustive()
    }
}

/// Releases an imported GSS name when dropped.
struct NameGuard(gss_name_t);

impl Drop for NameGuard {
    fn drop(&mut self) {
        if !self.0.is_null() {
            let mut minor: OM_uint32 = 0;
            // SAFETY: `self.0` came from a successful gss_import_name and is released only here.
            unsafe { gss_release_name(&mut minor, &mut self.0) };
        }
    }
}

impl GssapiCredentials {
    /// Acquires credentials to accept contexts for `principal` (the JAAS `principal` option,
    /// `service/host@REALM`) with keys from `keytab` (the JAAS `keyTab` option; `None` means
    /// the library's default key table, `KRB5_KTNAME` or `/etc/krb5.keytab`). Fails when the key
    /// table cannot be read or holds no key for the principal.
    pub fn acquire(principal: &str, keytab: Option<&Path>) -> Result<Self, SaslError> {
        if principal.is_empty() || principal.len() > MAX_PRINCIPAL_LEN || principal.contains('\0') {
            return Err(SaslError::Gssapi(format!("unusable service principal {principal:?}")));
        }
        let keytab = match keytab {
            None => None,
            Some(path) => {
                // Always name the type: a bare path with a colon would be read as `TYPE:residual`.
                let mut value = b"FILE:".to_vec();
                value.extend_from_slice(path.as_os_str().as_bytes());
                Some(CString::new(value).map_err(|_| SaslError::Gssapi("key table path contains a NUL byte".into()))?)
            }
        };

        let mut minor: OM_uint32 = 0;
        let mut name_type_oid = KRB5_NT_PRINCIPAL_NAME;
        let mut name_type =
            gss_OID_desc { length: name_type_oid.len() as OM_uint32, elements: name_type_oid.as_mut_ptr().cast() };
        let mut input = gss_buffer_desc { length: principal.len(), value: principal.as_ptr() as *mut c_void };
        let mut name = NameGuard(ptr::null_mut());
        // SAFETY: every pointer refers to a live local; gss_import_name copies the input buffer and
        // only reads the OID; on success it stores a name that NameGuard releases.
        let major = unsafe { gss_import_name(&mut minor, &mut input, &mut name_type, &mut name.0) };
        if major & GSS_ERROR_MASK != 0 {
            return Err(gss_status(&format!("importing the principal name {principal:?}"), major, minor));
        }

        let mut mech_oid = KRB5_MECHANISM;
        let mut mech = gss_OID_desc { length: mech_oid.len() as OM_uint32, elements: mech_oid.as_mut_ptr().cast() };
        let mut mechs = gss_OID_set_desc { count: 1, elements: &mut mech };
        let mut elements: Vec<gss_key_value_element_desc> = keytab
            .iter()
            .map(|value| gss_key_value_element_desc { key: c"keytab".as_ptr(), value: value.as_ptr() })
            .collect();
        let store = gss_key_value_set_desc { count: elements.len() as OM_uint32, elements: elements.as_mut_ptr() };
        let mut cred: gss_cred_id_t = ptr::null_mut();
        // SAFETY: the name, the OID set and the store (with the C strings it points at) live until
        // the call returns, and MIT copies what it keeps. On success `cred` is a fresh credential
        // owned by nobody else, handed to Cred, which releases it.
        let major = unsafe {
            gss_acquire_cred_from(
                &mut minor,
                name.0,
                _GSS_C_INDEFINITE,
                &mut mechs,
                GSS_C_ACCEPT as gss_cred_usage_t,
                &store,
                &mut cred,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if major & GSS_ERROR_MASK != 0 {
            return Err(gss_status(&format!("acquiring acceptor credentials for {principal}"), major, minor));
        }
        // SAFETY: see above; `cred` is ours alone.
        let cred = unsafe { Cred::from_c(cred) };
        Ok(GssapiCredentials { principal: principal.to_owned(), cred })
    }

    /// The service principal these credentials accept.
    pub fn principal(&self) -> &str {
        &self.principal
    }
}

/// The default realm of the Kerberos configuration this process reads (`KRB5_CONFIG`, else
/// `/etc/krb5.conf`), or `None` when it names none. ZooKeeper's `auth_to_local` rule `DEFAULT`
/// strips exactly this realm (the JVM reads it from `-Djava.security.krb5.conf`), so pass it to
/// [`AuthToLocal::parse`](crate::AuthToLocal::parse). MIT's library caches its configuration, so
/// call this after `KRB5_CONFIG` is settled, before the first GSSAPI exchange.
pub fn default_realm() -> Option<String> {
    // A principal name without a realm gets the default realm when the Kerberos mechanism parses it.
    let name = Name::new(b"roost", Some(GSS_NT_KRB5_PRINCIPAL)).ok()?;
    let shown = name.canonicalize(Some(GSS_MECH_KRB5)).ok()?.display_name().ok()?;
    let (_, realm) = std::str::from_utf8(&shown).ok()?.rsplit_once('@')?;
    (!realm.is_empty()).then(|| realm.to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Feeding the client's context tokens to GSS-API.
    Accepting,
    /// The context is established and its last token sent; the client must answer with nothing.
    AwaitingEmpty,
    /// The wrapped layer offer is sent; the client's wrapped choice is next.
    AwaitingLayer,
    Succeeded,
    Failed,
}

/// The server side of one GSSAPI exchange. Create one per connection (it holds that connection's
/// security context) and feed it each client token; it is finished after one success or failure.
///
/// It is `Send`, so it can move into the connection's task, but not `Sync`: MIT's GSS-API forbids
/// concurrent calls on one context, and every method takes `&mut self` anyway.
pub struct GssapiServer {
    ctx: ServerCtx,
    principal: String,
    state: State,
    /// Context tokens accepted so far.
    rounds: u8,
    /// The authenticated client principal, once the context is established.
    peer: Option<String>,
}

/// Names the principals and the state, never tokens or keys.
impl fmt::Debug for GssapiServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GssapiServer")
            .field("principal", &self.principal)
            .field("state", &self.state)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl GssapiServer {
    /// A server for one connection that accepts tickets for `principal` (the JAAS `principal`
    /// option, `service/host@REALM`) with keys from `keytab` (the JAAS `keyTab` option). See
    /// [`GssapiCredentials::acquire`]; a server that handles many connections should acquire
    /// those once and use [`with_credentials`](Self::with_credentials).
    pub fn new(principal: &str, keytab: Option<&Path>) -> Result<Self, SaslError> {
        Ok(Self::with_credentials(&GssapiCredentials::acquire(principal, keytab)?))
    }

    /// A server for one connection using credentials acquired earlier.
    pub fn with_credentials(credentials: &GssapiCredentials) -> Self {
        GssapiServer {
            ctx: ServerCtx::new(Some(credentials.cred.clone())),
            principal: credentials.principal.clone(),
            state: State::Accepting,
            rounds: 0,
            peer: None,
        }
    }

    /// True once a client has authenticated.
    pub fn is_complete(&self) -> bool {
        self.state == State::Succeeded
    }

    /// Feeds the client's next token. Any error ends the exchange, and so does success: later
    /// calls fail.
    pub fn step(&mut self, token: &[u8]) -> Result<Step, SaslError> {
        match self.state {
            State::Succeeded => return Err(SaslError::Gssapi("the exchange is already complete".into())),
            State::Failed => return Err(SaslError::Gssapi("the exchange has already failed".into())),
            State::Accepting | State::AwaitingEmpty | State::AwaitingLayer => {}
        }
        let state = self.state;
        // Whatever goes wrong below leaves the exchange failed.
        self.state = State::Failed;
        if token.len() > MAX_GSSAPI_TOKEN_LEN {
            return Err(SaslError::Gssapi(format!("token is {} bytes, more than {MAX_GSSAPI_TOKEN_LEN}", token.len())));
        }
        let (next, step) = match state {
            State::Accepting => self.accept(token)?,
            State::AwaitingEmpty => {
                if !token.is_empty() {
                    return Err(SaslError::Gssapi(
                        "expected an empty response once the context was established".into(),
                    ));
                }
                self.offer_layers()?
            }
            State::AwaitingLayer => self.check_layer_choice(token)?,
            State::Succeeded | State::Failed => return Err(SaslError::Gssapi("the exchange is over".into())),
        };
        self.state = next;
        Ok(step)
    }

    fn accept(&mut self, token: &[u8]) -> Result<(State, Step), SaslError> {
        if token.is_empty() {
            return Err(SaslError::Gssapi("expected a context token, got an empty one".into()));
        }
        self.rounds += 1;
        if self.rounds > MAX_CONTEXT_ROUNDS {
            return Err(SaslError::Gssapi(format!("no context after {MAX_CONTEXT_ROUNDS} tokens")));
        }
        let out = self.ctx.step(token, None).map_err(|e| gss_failure("accepting the client's context token", e))?;
        if !self.ctx.is_complete() {
            return match out {
                Some(out) if !out.is_empty() => Ok((State::Accepting, Step::Challenge(out.to_vec()))),
                _ => Err(SaslError::Gssapi("context not established and no token to send".into())),
            };
        }
        let flags = self.ctx.flags().map_err(|e| gss_failure("reading the context's flags", e))?;
        if flags.contains(CtxFlags::GSS_C_ANON_FLAG) {
            return Err(SaslError::GssapiRejected("anonymous clients are not accepted".into()));
        }
        let source = self.ctx.source_name().map_err(|e| gss_failure("reading the client's name", e))?;
        let display = source.display_name().map_err(|e| gss_failure("displaying the client's name", e))?;
        let peer = std::str::from_utf8(&display)
            .map_err(|_| SaslError::Gssapi("the client's principal name is not UTF-8".into()))?
            .to_owned();
        if peer.is_empty() {
            return Err(SaslError::Gssapi("the client's principal name is empty".into()));
        }
        self.peer = Some(peer);
        match out {
            Some(out) if !out.is_empty() => Ok((State::AwaitingEmpty, Step::Challenge(out.to_vec()))),
            _ => self.offer_layers(),
        }
    }

    fn offer_layers(&mut self) -> Result<(State, Step), SaslError> {
        let [_, a, b, c] = SERVER_MAX_BUFFER.to_be_bytes();
        let offer = [LAYER_NONE, a, b, c];
        // Integrity only, like the JDK (MessageProp(0, false)): the offer is not secret.
        let wrapped = self.ctx.wrap(false, &offer).map_err(|e| gss_failure("wrapping the security layer offer", e))?;
        Ok((State::AwaitingLayer, Step::Challenge(wrapped.to_vec())))
    }

    fn check_layer_choice(&mut self, token: &[u8]) -> Result<(State, Step), SaslError> {
        let plain = self.ctx.unwrap(token).map_err(|e| gss_failure("unwrapping the client's layer choice", e))?;
        let Some((&[layer, _, _, _], authzid)) = plain.split_first_chunk::<4>() else {
            return Err(SaslError::Gssapi(format!(
                "the client's layer choice is {} bytes, not at least 4",
                plain.len()
            )));
        };
        if layer != LAYER_NONE {
            return Err(SaslError::GssapiRejected(format!(
                "client chose security layer {layer:#04x}, but only none ({LAYER_NONE:#04x}) was offered"
            )));
        }
        // The client's maximum receive size only matters for a security layer; with none it is
        // ignored, as the JDK does (pure-sasl sends 65536 rather than RFC 4752's 0).
        let peer = self.peer.clone().ok_or_else(|| SaslError::Gssapi("no authenticated client".into()))?;
        if !authzid.is_empty() {
            let authzid = std::str::from_utf8(authzid)
                .map_err(|_| SaslError::Gssapi("the authorization id is not UTF-8".into()))?;
            if authzid != peer {
                return Err(SaslError::GssapiRejected(
                    "the authorization id differs from the authenticated principal".into(),
                ));
            }
        }
        Ok((State::Succeeded, Step::Success { token: None, authentication_id: peer }))
    }
}
