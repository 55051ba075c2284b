#!/bin/sh
# Metabase keeps its settings in its own database, not in files: this creates the admin user
# and the cloudpg database through Metabase's setup API, once, on first start.
set -eu
MB=http://metabase:3000
token=$(curl -fsS "$MB/api/session/properties" | sed -n 's/.*"setup-token":"\([^"]*\)".*/\1/p')
if [ -z "$token" ]; then
    echo "metabase is already set up"
    exit 0
fi
curl -fsS -X POST "$MB/api/setup" -H 'Content-Type: application/json' -d "{
  \"token\": \"$token\",
  \"user\": {\"first_name\": \"Cloud\", \"last_name\": \"Admin\", \"email\": \"admin@example.com\",
             \"password\": \"cloudpg-demo-1\", \"site_name\": \"cloudpg demo\"},
  \"prefs\": {\"site_name\": \"cloudpg demo\", \"allow_tracking\": false},
  \"database\": {\"engine\": \"postgres\", \"name\": \"cloudpg\",
                 \"details\": {\"host\": \"cloudpg\", \"port\": 5433, \"dbname\": \"awscc\",
                               \"user\": \"postgres\", \"password\": \"\", \"ssl\": false,
                               \"schema-filters-type\": \"inclusion\",
                               \"schema-filters-patterns\": \"ec2,s3,lambda,iam,cloudpg\"}}
}" >/dev/null
echo "metabase is set up with the cloudpg database"
