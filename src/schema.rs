// @generated automatically by Diesel CLI.

diesel::table! {
    auth_events (id) {
        id -> Integer,
        kind -> Text,
        user_id -> Nullable<Integer>,
        actor_id -> Nullable<Integer>,
        ip -> Text,
        user_agent -> Text,
        created_at -> Timestamp,
        detail -> Text,
    }
}

diesel::table! {
    group_permissions (group_id, permission_id) {
        group_id -> Integer,
        permission_id -> Integer,
    }
}

diesel::table! {
    groups (id) {
        id -> Integer,
        name -> Text,
    }
}

diesel::table! {
    login_attempts (scope) {
        scope -> Text,
        failures -> Integer,
        last_failure_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Integer,
        message_id -> Text,
        recipient -> Text,
        subject -> Text,
        body_text -> Text,
        body_html -> Text,
        created_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        failed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    permissions (id) {
        id -> Integer,
        codename -> Text,
        name -> Text,
    }
}

diesel::table! {
    sessions (id) {
        id -> Integer,
        key_hash -> Text,
        data -> Text,
        expires_at -> Timestamp,
        user_id -> Nullable<Integer>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    user_groups (user_id, group_id) {
        user_id -> Integer,
        group_id -> Integer,
    }
}

diesel::table! {
    user_permissions (user_id, permission_id) {
        user_id -> Integer,
        permission_id -> Integer,
    }
}

diesel::table! {
    users (id) {
        id -> Integer,
        username -> Text,
        password -> Text,
        is_active -> Bool,
        is_superuser -> Bool,
        date_joined -> Timestamp,
        last_login -> Nullable<Timestamp>,
        username_key -> Text,
        email -> Nullable<Text>,
        email_key -> Nullable<Text>,
        email_confirmed -> Bool,
        new_email -> Nullable<Text>,
        is_staff -> Bool,
    }
}

diesel::joinable!(group_permissions -> groups (group_id));
diesel::joinable!(group_permissions -> permissions (permission_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(user_groups -> groups (group_id));
diesel::joinable!(user_groups -> users (user_id));
diesel::joinable!(user_permissions -> permissions (permission_id));
diesel::joinable!(user_permissions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    auth_events,
    group_permissions,
    groups,
    login_attempts,
    mail_outbox,
    permissions,
    sessions,
    user_groups,
    user_permissions,
    users,
);
